// attnlab-cli: the headless command line. Every command prints one line naming the problem and
// exits non-zero on bad input (1: the input or a file is wrong; 2: the command line is wrong).
#pragma once

namespace attnlab::cli {

int run(int argc, char** argv);

}  // namespace attnlab::cli

#!/usr/bin/env python3
"""PyTorch on the same shapes as attnlab-cuda-bench, and the ratios.

Reads the JSON that `attnlab-cuda-bench --json` wrote, times PyTorch for every row on the same
GPU (CUDA events, median after a warm-up, same repeats), and prints a table of both and their
ratio; writes the merged rows as JSON and as a Markdown table for docs/gpu.md.

  exact attention: torch.nn.functional.scaled_dot_product_attention restricted to the flash
                   backend (SDPBackend.FLASH_ATTENTION), inputs [B, H, L, d] with B·H = our BH
  linear (elu+1):  the cumulative-sum formula (as in fast-transformers' reference):
                   causal   S = cumsum_l φ(k_l) v_lᵀ, z = cumsum_l φ(k_l), out = φ(q)ᵀS / (φ(q)ᵀz + ε)
                   full     S = Σ φ(k) vᵀ, the same without the cumulative sums

  bigbird:         gather of each query block's key blocks (window 3, the 2 global blocks, 3
                   random: 8 per row as ours for interior rows), dense softmax inside, global rows
                   by flash SDPA over all keys (the HuggingFace-style block gather)
  reformer_lsh:    reformer-pytorch style: hash by a random rotation, argsort by (bucket, position),
                   gather, chunks of 64 with one chunk back, self score -5e4, scatter back, rounds
                   combined by their log-sum-exp

Usage: torch_reference.py OURS.json OUT_PREFIX
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def time_ms(fn, repeats):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def torch_flash(row, repeats):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[row["dtype"]]
    bh, L, d = row["batch_heads"], row["length"], row["d"]
    heads = 2048 // d if bh % (2048 // d) == 0 and bh >= 2048 // d else bh
    shape = (bh // heads, heads, L, d)
    q, k, v = (torch.randn(shape, device="cuda", dtype=dtype) for _ in range(3))
    backend = SDPBackend.FLASH_ATTENTION if dtype != torch.float32 else SDPBackend.EFFICIENT_ATTENTION
    with sdpa_kernel(backend):
        ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=row["causal"]), repeats)
    return ms, ("flash" if dtype != torch.float32 else "mem-efficient (fp32)")


def torch_linear(row, repeats):
    H, L, d = row["heads"], row["length"], row["d"]
    q, k, v = (torch.randn((1, H, L, d), device="cuda") for _ in range(3))
    eps = 1e-6

    def run():
        fq, fk = F.elu(q) + 1, F.elu(k) + 1
        if row["causal"]:
            s = torch.einsum("bhld,bhlm->bhldm", fk, v).cumsum(2)
            z = fk.cumsum(2)
            num = torch.einsum("bhld,bhldm->bhlm", fq, s)
            den = (fq * z).sum(-1, keepdim=True)
        else:
            s = torch.einsum("bhld,bhlm->bhdm", fk, v)
            z = fk.sum(2)
            num = torch.einsum("bhld,bhdm->bhlm", fq, s)
            den = torch.einsum("bhld,bhd->bhl", fq, z).unsqueeze(-1)
        return num / (den + eps)

    return time_ms(run, repeats), "cumsum"


def torch_bigbird(row, repeats):
    H, L, d, b = row["heads"], row["length"], row["d"], 64
    nb = L // b
    q, k, v = (torch.randn((H, L, d), device="cuda", dtype=torch.bfloat16) for _ in range(3))
    g = torch.Generator(device="cpu").manual_seed(0)
    rows = torch.arange(nb)
    window = torch.stack([(rows - 1).clamp(0, nb - 1), rows, (rows + 1).clamp(0, nb - 1)], -1)
    glob = torch.tensor([0, nb - 1]).expand(nb, 2)
    rand = torch.randint(1, nb - 1, (H, nb, 3), generator=g)
    idx = torch.cat([window.expand(H, nb, 3), glob.expand(H, nb, 2), rand], -1).cuda()  # [H, nb, 8]
    hidx = torch.arange(H, device="cuda")[:, None, None]

    def run():
        kb, vb = k.view(H, nb, b, d), v.view(H, nb, b, d)
        kg = kb[hidx, idx].reshape(H, nb, 8 * b, d)
        vg = vb[hidx, idx].reshape(H, nb, 8 * b, d)
        s = torch.einsum("hnqd,hnkd->hnqk", q.view(H, nb, b, d), kg) * d ** -0.5
        out = torch.einsum("hnqk,hnkd->hnqd", s.softmax(-1), vg).reshape(H, L, d)
        glob_q = torch.cat([q[:, :b], q[:, -b:]], 1)[None]
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            go = F.scaled_dot_product_attention(glob_q, k[None], v[None])[0]
        out[:, :b], out[:, -b:] = go[:, :b], go[:, b:]
        return out

    return time_ms(run, repeats), "block gather"


def torch_lsh(row, repeats):
    H, L, d, R, nb, c = row["heads"], row["length"], row["d"], row["n_hashes"], row["n_buckets"], row["bucket_size"]
    q, v = (torch.randn((H, L, d), device="cuda") for _ in range(2))
    rot = torch.randn((H, R, d, nb // 2), device="cuda")
    pos = torch.arange(L, device="cuda")
    nc = L // c

    def run():
        proj = torch.einsum("hld,hrdm->hrlm", q, rot)
        buckets = torch.cat([proj, -proj], -1).argmax(-1)  # [H, R, L]
        order = (buckets * L + pos).argsort(-1)
        sq = q[:, None].expand(H, R, L, d).gather(2, order[..., None].expand(H, R, L, d))
        sv = v[:, None].expand(H, R, L, d).gather(2, order[..., None].expand(H, R, L, d))
        kq = F.normalize(sq, dim=-1)
        cq, ck, cv, cp = (t.reshape(H, R, nc, c, *t.shape[3:]) for t in (sq, kq, sv, order))
        back = lambda t: torch.cat([t, t.roll(1, dims=2)], dim=3)
        ck, cv, kp = back(ck), back(cv), back(cp)
        s = torch.einsum("hrnqd,hrnkd->hrnqk", cq, ck) * d ** -0.5
        s = s.masked_fill(cp[..., :, None] == kp[..., None, :], -5e4)
        lse = s.logsumexp(-1, keepdim=True)
        o = torch.einsum("hrnqk,hrnkd->hrnqd", (s - lse).exp(), cv).reshape(H, R, L, d)
        lse = lse.reshape(H, R, L)
        inv = order.argsort(-1)
        o = o.gather(2, inv[..., None].expand(H, R, L, d))
        lse = lse.gather(2, inv)
        w = (lse - lse.logsumexp(1, keepdim=True)).exp()
        return (o * w[..., None]).sum(1)

    return time_ms(run, repeats), "sort + chunk"


def main():
    ours = json.load(open(sys.argv[1]))
    prefix = sys.argv[2]
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    merged = []
    for row in ours["rows"]:
        repeats = 20 if row["median_ms"] < 200 else 3
        try:
            bench = {"flash": torch_flash, "linear": torch_linear, "bigbird": torch_bigbird, "lsh": torch_lsh}
            ms, impl = bench[row["kernel"]](row, repeats)
        except torch.OutOfMemoryError:
            ms, impl = None, "out of memory"
            torch.cuda.empty_cache()
        except RuntimeError as e:  # e.g. no flash kernel for this shape
            ms, impl = None, "error: " + str(e).splitlines()[0][:60]
        r = dict(row, torch_ms=ms, torch_impl=impl)
        if ms:
            r["ratio_torch_over_ours"] = ms / row["median_ms"]
            if row["kernel"] == "flash":
                r["torch_tflops"] = row["tflops"] * row["median_ms"] / ms
        merged.append(r)
        tf = f"{r.get('torch_tflops', 0):7.1f} TF/s" if row["kernel"] == "flash" else ""
        print(f"{row['kernel']:6} {row['dtype']} d={row['d']} {'causal' if row['causal'] else 'full  '} "
              f"L={row['length']:<8} ours {row['median_ms']:9.3f} ms  torch {ms if ms else float('nan'):9.3f} ms {tf} "
              f"({impl})  torch/ours {r.get('ratio_torch_over_ours', float('nan')):.2f}", flush=True)
        torch.cuda.empty_cache()
    json.dump({"device": ours["device"], "torch": torch.__version__, "rows": merged}, open(prefix + ".json", "w"), indent=1)
    with open(prefix + ".md", "w") as md:
        md.write("| kernel | dtype | d | causal | L | BH | warps | ours ms | ours TFLOP/s | torch ms | torch TFLOP/s | torch impl | torch/ours |\n")
        md.write("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
        for r in merged:
            md.write(f"| {r['kernel']} | {r['dtype']} | {r['d']} | {'yes' if r['causal'] else 'no'} | {r['length']} | "
                     f"{r.get('batch_heads', r.get('heads'))} | {r.get('warps', '')} | {r['median_ms']:.3f} | "
                     f"{r.get('tflops', 0):.1f} | {r['torch_ms'] if r['torch_ms'] is None else round(r['torch_ms'], 3)} | "
                     f"{r.get('torch_tflops', 0):.1f} | {r['torch_impl']} | {r.get('ratio_torch_over_ours', float('nan')):.2f} |\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""OpenTSLM time to first token, decode speed and RSS: tslm against the PyTorch reference (issue 12).

    python3 tools/bench_opentslm_torch.py [--tslm .build/release/tslm] [--cases sp-har,sp-ecg]
        [--types q8_0] [--reps 3] [--threads 2] [--decode 32] [--out .cache/bench-opentslm]
        [--md .cache/bench-opentslm-torch.md]

Models: the random-init SoftPrompt (SP) and Flamingo checkpoints in the official layouts on
SmolLM2-135M that tools/bench_opentslm.sh uses (tools/make_bench_opentslm.py, written once into
OUT/ckpt), converted for tslm with `tslm convert CKPT --base GGUF --type TYPE` (OUT/{sp,flamingo}-TYPE.tslm,
shared with bench_opentslm.sh). PyTorch runs the SAME checkpoint: the LLM is the same GGUF loaded
by transformers (`gguf_file=`, dequantized to float32), the encoder / projector / perceiver /
cross-attention weights come from the .pt file, the architecture is tools/opentslm_reference.py
(the official computation, written from formats/opentslm.md). fp32 throughout on the torch side.

Prompts (one CSV per case, seeded synthetic values, one column per series):
  har   3 series (x, y, z) of 128 samples (a 2.56 s window at 50 Hz), tslm preset `har`,
        post prompt "Rationale:"; the pre prompt is padded with words until the SP prompt has
        329 positions (the issue's HAR prompt): 3 x 32 soft tokens + 233 text tokens.
  ecg   12 leads of 1000 samples (PTB-XL at 100 Hz), preset `ecg`, post prompt "Answer:"; pre
        prompt padded to 3,577 positions: 12 x 250 soft tokens + 577 text tokens.
Flamingo uses the same series and texts (its prompt is the one string
"pre <image> desc <|endofchunk|> ... post" tokenized once, plus 64 perceiver latents as media).

Matching: the text is tokenized here with SmolLM2's own tokenizer rebuilt from the GGUF
(tools/smollm2_tokenizer.py: the GGUF's vocab, merges and digit splitting; add_bos_token is false,
so no segment gets a BOS), each SP segment on its own as upstream does ([pre][desc_i][soft_i]...
[post]). tslm runs first in every case; the position count from its stats line is compared with
the count of the torch prompt, and the table says whether they were equal. If they were not, the
torch prompt's pre-prompt ids are padded (repeating its last id) or cut to tslm's count, so both
engines always run the same number of positions ("adjust" column).

Timing, interleaved per repetition (tslm, torch, tslm, torch, ...), medians over --reps:
  tslm   `tslm run -m MODEL --series CSV --preset P --pre .. -p .. -n DECODE -t THREADS` under
         /usr/bin/time. TTFT = positions / (pos/s) from the stats line (series normalization and
         encoding, prefill, first token's logits; model load excluded). Decode = forward steps per
         second: generated tokens g in generateSeconds = g / (tok/s) with g - 1 forward passes
         when stopped by the length (the last sampled token is not run), g when stopped by EOS.
         RSS = /usr/bin/time's peak of the whole process. wall = the whole process.
  torch  one worker process per case and model, which loads the model once, runs one untimed
         warm-up, then one timed run per repetition when the orchestrator asks (so the runs
         interleave with tslm's). torch.set_num_threads(THREADS), torch.inference_mode().
         TTFT = from the raw float32 series to the first token: per-series normalization (the
         preset's rule), zero padding, encoder + projector (SP) or CNN tokenizer + perceiver
         (Flamingo), text embedding lookup and concatenation, the LLM forward over all positions
         with use_cache=True and logits_to_keep=1 (what `generate` does), argmax. The text ids are
         tokenized before the clock starts. Decode = DECODE - 1 cached single-token forwards +
         argmax (EOS ignored), steps per second. RSS = the worker's ru_maxrss (includes loading
         the GGUF and dequantizing it) and its VmRSS after the last run.
Ratios: PyTorch TTFT / tslm TTFT (issue 12 target >= 3) and tslm decode / PyTorch decode (>= 5).
"""
import argparse
import json
import math
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GGUF = os.path.join(ROOT, ".cache", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
FLAMINGO_ADDED = ["<|endofchunk|>", "<image>"]  # ids 49152, 49153 (tools/make_bench_opentslm.py)

ECG_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
CASES = {
    # name: (preset, n_series, length, target SP positions, post prompt, pre prompt stem)
    "har": ("har", 3, 128, 329, "Rationale:",
            "You are given the accelerometer readings of a body-worn sensor in all three axes, "
            "recorded at 50 Hz for 2.56 seconds. Decide which activity the person was doing: "
            "biking, lying, running, sitting, standing, walking, walking downstairs or walking "
            "upstairs. Explain your reasoning step by step from the shape, the energy and the "
            "rhythm of the signals, then give the final answer after 'Answer:'."),
    "ecg": ("ecg", 12, 1000, 3577, "Answer:",
            "You are an experienced cardiologist reading a 12-lead electrocardiogram, 10 seconds "
            "sampled at 100 Hz. Clinical context: the patient is an adult referred for a routine "
            "examination; age and sex are not given. Question: does this ECG show signs of a "
            "conduction disturbance, an old or acute myocardial infarction, hypertrophy or an "
            "abnormal ST-T segment? Think about the rhythm, the rate, the axis, the intervals and "
            "the morphology of every lead before answering with one of the options."),
}
FILLER = ("Look at each lead in turn and compare it with the others. Note the baseline, the noise "
          "level, the amplitude of the largest deflections and how regular the intervals between "
          "them are. Consider whether the pattern is stable over the whole window or changes in "
          "the middle, and whether several channels move together. Then summarize what you saw in "
          "a few sentences, name the most likely answer and say how sure you are.").split()


def description(preset, i, mean, std):
    if preset == "har":
        return f"The following is the accelerometer data on the {'xyz'[i]}-axis, it has mean {mean:.4f} and std {std:.4f}:"
    if preset == "ecg":
        return f"This is ECG Lead {ECG_LEADS[i]}, it has mean {mean:.4f} and std {std:.4f}:"
    raise ValueError(preset)


# ------------------------------------------------------------------------------------------------
# shared by the orchestrator and the workers
# ------------------------------------------------------------------------------------------------

def tokenizer(flamingo=False):
    sys.path.insert(0, HERE)
    import smollm2_tokenizer
    from tokenizers import AddedToken
    tok, _ = smollm2_tokenizer.build(GGUF)
    if flamingo:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in FLAMINGO_ADDED])
        for i, t in enumerate(FLAMINGO_ADDED):
            assert tok.token_to_id(t) == 49152 + i, (t, tok.token_to_id(t))
    return tok


def read_csv(path):
    import numpy as np
    a = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    return [a[:, c].copy() for c in range(a.shape[1])]


def descriptions(preset, series):
    sys.path.insert(0, HERE)
    import opentslm_reference as ref
    return [description(preset, i, *ref.normalize(s, preset)[1:]) for i, s in enumerate(series)]


def sp_ids(tok, pre, descs, post):
    enc = lambda t: tok.encode(t, add_special_tokens=False).ids  # noqa: E731
    return enc(pre), [enc(d) for d in descs], enc(post)


def flamingo_ids(tok, pre, descs, post):
    text = pre + "".join(f" <image> {d} <|endofchunk|>" for d in descs) + " " + post
    return tok.encode(text, add_special_tokens=False).ids


def sp_count(tok, pre, descs, post, n_series, length):
    p, d, q = sp_ids(tok, pre, descs, post)
    return len(p) + sum(map(len, d)) + len(q) + n_series * math.ceil(length / 4)


def rss_mib_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------------------
# torch worker: loads once, answers "run" lines with one JSON line each
# ------------------------------------------------------------------------------------------------

def worker(args):
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, HERE)
    import opentslm_reference as ref
    from transformers import AutoModelForCausalLM

    spec = json.load(open(args.worker_spec))
    kind, preset, positions = spec["model"], spec["preset"], spec["positions"]
    series = read_csv(spec["csv"])
    descs = descriptions(preset, series)
    tok = tokenizer(flamingo=kind == "flamingo")
    t_load = time.perf_counter()
    llm = AutoModelForCausalLM.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF),
                                               dtype=torch.float32).eval()
    ckpt = torch.load(spec["ckpt"], map_location="cpu", weights_only=False)
    adjust = 0
    if kind == "sp":
        es, ps = ckpt["encoder_state"], ckpt["projector_state"]
        layers = 1 + max(int(k.split(".")[2]) for k in es if k.startswith("encoder.layers."))
        encoder = ref.TransformerCNNEncoder(num_layers=layers, ff_dim=es["encoder.layers.0.linear1.weight"].shape[0],
                                            max_patches=es["pos_embed"].shape[1])
        encoder.load_state_dict(es)
        projector = ref.MLPProjector(llm.config.hidden_size)
        projector.load_state_dict(ps)
        encoder.eval(), projector.eval()
        model = ref.SoftPromptModel(llm, encoder, projector)
        pre, dids, post = sp_ids(tok, spec["pre"], descs, spec["post"])
        soft = len(series) * math.ceil(max(len(s) for s in series) / 4)
        count = len(pre) + sum(map(len, dids)) + len(post) + soft
        adjust = positions - count
        pre = pre + [pre[-1]] * adjust if adjust >= 0 else pre[:adjust]
    else:
        state = {k[len("model."):]: v for k, v in ckpt["model_state"].items() if k.startswith("model.")}
        with torch.no_grad():
            old = llm.get_input_embeddings().weight.detach().clone()
            llm.resize_token_embeddings(old.shape[0] + len(FLAMINGO_ADDED), mean_resizing=False)
        perc_layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("perceiver.layers."))
        inner = state["perceiver.layers.0.0.to_q.weight"].shape[0]
        vision = ref.CNNTokenizer(state["vision_encoder.pos_embed"].shape[1])
        perceiver = ref.PerceiverResampler(ref.ENCODER_DIM, perc_layers, state["perceiver.latents"].shape[0], inner,
                                           state["perceiver.layers.0.1.1.weight"].shape[0])
        xin = state["lang_encoder.model.layers.0.gated_cross_attn_layer.attn.to_q.weight"].shape[0]
        xff = state["lang_encoder.model.layers.0.gated_cross_attn_layer.ff.1.weight"].shape[0]
        model = ref.FlamingoModel(vision, perceiver, llm, 49153, xin, xff)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise SystemExit(f"flamingo state: missing {missing[:5]}, unexpected {unexpected[:5]}")
        model.eval()
        ids = flamingo_ids(tok, spec["pre"], descs, spec["post"])
        count = len(ids)
        adjust = positions - count
        ids = ids[:1] + [ids[1]] * adjust + ids[1:] if adjust >= 0 else ids[:1] + ids[1 - adjust:]
    del ckpt
    load_s = time.perf_counter() - t_load
    raw = [torch.from_numpy(s) for s in series]

    def run_once():
        n_steps = spec["decode"] - 1
        with torch.inference_mode():
            t0 = time.perf_counter()
            normed = [ref.normalize(s, preset)[0] for s in raw]
            padded = ref.pad_series(normed)
            if kind == "sp":
                embeds, _, _, _ = model.build_inputs(pre, dids, post, padded)
                n_pos = embeds.shape[1]
                out = llm(inputs_embeds=embeds, use_cache=True, logits_to_keep=1)
            else:
                _, latents = model.encode_media(padded)
                tt = model.text_time(ids, model.media_token_id)
                model._condition(latents, tt)
                n_pos = len(ids)
                out = llm(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1)
            tok_id = int(out.logits[0, -1].argmax())
            ttft = time.perf_counter() - t0
            cache = out.past_key_values
            if kind == "flamingo":
                model._condition(latents, torch.full((1, 1), int(tt[0, -1]), dtype=torch.long))
            t1 = time.perf_counter()
            for _ in range(n_steps):
                out = llm(input_ids=torch.tensor([[tok_id]]), past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                tok_id = int(out.logits[0, -1].argmax())
            dec = time.perf_counter() - t1
        return {"positions": n_pos, "ttft": ttft, "decode_steps": n_steps, "decode_s": dec,
                "decode_sps": n_steps / dec if dec > 0 else 0.0}

    print(json.dumps({"ready": True, "python_count": count, "adjust": adjust, "load_s": load_s}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        r = run_once()
        r["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        r["rss_mib"] = rss_mib_now()
        r["warmup"] = cmd == "warmup"
        print(json.dumps(r), flush=True)


# ------------------------------------------------------------------------------------------------
# orchestrator
# ------------------------------------------------------------------------------------------------

STATS = re.compile(r"^prompt: (\d+) positions, ([0-9.]+) pos/s \| generation: (\d+) tokens, ([0-9.]+) tok/s \| stop: (\S+)", re.M)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_tslm(args, model, csv, preset, pre, post):
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        cmd = ["/usr/bin/time", "-f", "%M %e", "-o", tf.name, args.tslm, "run", "-m", model, "--series", csv,
               "--preset", preset, "--pre", pre, "-p", post, "-n", str(args.decode), "-t", str(args.threads)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        timing = tf.read().strip().splitlines()
    if p.returncode != 0:
        raise SystemExit(f"tslm run failed ({p.returncode}):\n{p.stderr[-2000:]}")
    m = STATS.search(p.stderr)
    if not m:
        raise SystemExit(f"no stats line in tslm's stderr:\n{p.stderr[-2000:]}")
    pos, pps, gen, tps, stop = int(m[1]), float(m[2]), int(m[3]), float(m[4]), m[5]
    rss_kb, wall = timing[-1].split()
    gen_s = gen / tps if tps > 0 else 0.0
    steps = gen if stop == "eos" else gen - 1
    return {"positions": pos, "ttft": pos / pps, "decode_steps": steps, "decode_s": gen_s,
            "decode_sps": steps / gen_s if gen_s > 0 else 0.0, "generated": gen, "stop": stop,
            "peak_rss_mib": int(rss_kb) / 1024, "wall": float(wall)}


def ensure_models(args, models, types):
    if not os.path.isfile(os.path.join(args.out, "ckpt", "manifest.json")):
        log(f"generating the random-init checkpoints into {args.out}/ckpt ...")
        subprocess.run([sys.executable, os.path.join(HERE, "make_bench_opentslm.py"), os.path.join(args.out, "ckpt"),
                        "--base", GGUF], check=True)
    for m in models:
        ckpt = os.path.join(args.out, "ckpt", m, "model_checkpoint.pt")
        for t in types:
            f = os.path.join(args.out, f"{m}-{t}.tslm")
            if not os.path.isfile(f) or os.path.getmtime(ckpt) > os.path.getmtime(f):
                log(f"converting {m} ({t}) ...")
                subprocess.run([args.tslm, "convert", ckpt, "--base", GGUF, "-o", f, "--type", t, "-q"], check=True)


def write_series(path, preset, n, length, seed):
    if os.path.isfile(path):
        return
    rng = random.Random(seed)
    rows = []
    for t in range(length):
        vals = []
        for c in range(n):
            if preset == "har":  # gravity offset + gait rhythm + noise
                v = (9.8 if c == 2 else 0.5 * c) + 1.5 * math.sin(2 * math.pi * 1.8 * t / 50 + c) + 0.3 * rng.gauss(0, 1)
            else:  # ECG-like: ~72 bpm spikes (100 Hz) + baseline wander + noise, per-lead gain
                ph = (t + 7 * c) % 83
                v = (1.0 - 0.15 * c) * math.exp(-((ph - 40) ** 2) / 4.0) + 0.1 * math.sin(2 * math.pi * t / 400 + c) \
                    + 0.02 * rng.gauss(0, 1)
            vals.append(f"{v:.5f}")
        rows.append(",".join(vals))
    with open(path + ".tmp-w", "w") as f:
        f.write("\n".join(rows) + "\n")
    os.replace(path + ".tmp-w", path)


def fit_pre(tok, stem, descs, post, n, length, target):
    """The stem plus filler words (cycled) so that the SP prompt has `target` positions, as near as
    whole words allow (a word that would overshoot is skipped)."""
    pre = stem
    count = sp_count(tok, pre, descs, post, n, length)
    i = skipped = 0
    while count < target and skipped < 4 * len(FILLER):
        cand = pre + " " + FILLER[i % len(FILLER)]
        i += 1
        c = sp_count(tok, cand, descs, post, n, length)
        if c <= target:
            pre, count, skipped = cand, c, 0
        else:
            skipped += 1
    return pre, count


def reply(proc):
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"the torch worker exited ({proc.wait()}) without an answer; its errors are above")
    return json.loads(line)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tslm", default=os.path.join(ROOT, ".build", "release", "tslm"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".cache", "bench-opentslm"))
    ap.add_argument("--md", default=os.path.join(ROOT, ".cache", "bench-opentslm-torch.md"))
    ap.add_argument("--cases", default="sp-har,sp-ecg,flamingo-har",
                    help="comma-separated MODEL-PROMPT, MODEL in sp|flamingo, PROMPT in har|ecg")
    ap.add_argument("--types", default="q8_0", help="tslm storage types, comma-separated (q8_0, f32, ...)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decode", type=int, default=32, help="tokens generated per run (decode steps = this - 1)")
    ap.add_argument("--omp-wait-policy", default="PASSIVE",
                    help="OMP_WAIT_POLICY for the torch worker (default PASSIVE; '' = libgomp's default, which "
                         "spins and is several times slower when the cores are shared with other jobs)")
    ap.add_argument("--worker-spec", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_spec:
        return worker(args)

    args.tslm = os.path.abspath(args.tslm)
    if not os.access(args.tslm, os.X_OK):
        raise SystemExit(f"{args.tslm}: not an executable (make release builds it)")
    if not os.path.isfile(GGUF):
        subprocess.run([os.path.join(HERE, "fetch_smollm2.sh")], check=True)
    cases = [c.split("-", 1) for c in args.cases.split(",") if c]
    types = [t for t in args.types.split(",") if t]
    ensure_models(args, sorted({m for m, _ in cases}), types)
    os.makedirs(os.path.join(args.out, "series"), exist_ok=True)
    tok = tokenizer()
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    t_start = time.time()
    rows = []
    for model, prompt in cases:
        preset, n, length, target, post, stem = CASES[prompt]
        csv = os.path.join(args.out, "series", f"{prompt}-{n}x{length}.csv")
        write_series(csv, preset, n, length, seed=1000 * n + length)
        descs = descriptions(preset, read_csv(csv))
        pre, sp_target = fit_pre(tok, stem, descs, post, n, length, target)
        log(f"== {model}-{prompt}: {n} series x {length} samples, preset {preset}, SP text+soft = {sp_target} positions")
        res = {t: [] for t in types}
        torch_runs = []
        worker_proc = None
        info = {}
        for rep in range(args.reps):
            for t in types:
                r = run_tslm(args, os.path.join(args.out, f"{model}-{t}.tslm"), csv, preset, pre, post)
                res[t].append(r)
                log(f"  tslm {t} #{rep + 1}: {r['positions']} pos, TTFT {r['ttft']:.3f} s, decode {r['decode_sps']:.1f} steps/s "
                    f"({r['generated']} tok, {r['stop']}), RSS {r['peak_rss_mib']:.0f} MiB, wall {r['wall']:.2f} s")
            if worker_proc is None:
                positions = res[types[0]][0]["positions"]
                spec = {"model": model, "preset": preset, "positions": positions, "csv": csv, "pre": pre, "post": post,
                        "decode": args.decode, "ckpt": os.path.join(args.out, "ckpt", model, "model_checkpoint.pt")}
                spec_path = os.path.join(args.out, f"torch-{model}-{prompt}.json")
                with open(spec_path, "w") as f:
                    json.dump(spec, f)
                env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                           TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error")
                if args.omp_wait_policy:
                    env["OMP_WAIT_POLICY"] = args.omp_wait_policy
                worker_proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker-spec", spec_path,
                                                "--threads", str(args.threads)],
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                info = reply(worker_proc)
                log(f"  torch loaded in {info['load_s']:.1f} s; its own count {info['python_count']} vs tslm {positions} "
                    f"(adjust {info['adjust']:+d})")
                worker_proc.stdin.write("warmup\n")
                worker_proc.stdin.flush()
                w = reply(worker_proc)
                log(f"  torch warm-up: TTFT {w['ttft']:.3f} s")
            worker_proc.stdin.write("run\n")
            worker_proc.stdin.flush()
            r = reply(worker_proc)
            torch_runs.append(r)
            log(f"  torch fp32 #{rep + 1}: {r['positions']} pos, TTFT {r['ttft']:.3f} s, decode {r['decode_sps']:.1f} steps/s, "
                f"peak RSS {r['peak_rss_mib']:.0f} MiB (now {r['rss_mib']:.0f})")
        worker_proc.stdin.write("quit\n")
        worker_proc.stdin.flush()
        worker_proc.wait()
        tt = med([r["ttft"] for r in torch_runs])
        td = med([r["decode_sps"] for r in torch_runs])
        for t in types:
            rs = res[t]
            ttft, dec = med([r["ttft"] for r in rs]), med([r["decode_sps"] for r in rs])
            rows.append({"case": f"{model}-{prompt}", "engine": f"tslm {t}", "positions": rs[0]["positions"],
                         "ttft": ttft, "ttft_lo": min(r["ttft"] for r in rs), "ttft_hi": max(r["ttft"] for r in rs),
                         "decode": dec, "rss": max(r["peak_rss_mib"] for r in rs), "rss_after": None,
                         "wall": med([r["wall"] for r in rs]), "ttft_ratio": tt / ttft, "decode_ratio": dec / td,
                         "stop": ",".join(sorted({r["stop"] for r in rs})), "adjust": info.get("adjust")})
        rows.append({"case": f"{model}-{prompt}", "engine": "PyTorch fp32", "positions": torch_runs[0]["positions"],
                     "ttft": tt, "ttft_lo": min(r["ttft"] for r in torch_runs), "ttft_hi": max(r["ttft"] for r in torch_runs),
                     "decode": td, "rss": max(r["peak_rss_mib"] for r in torch_runs), "rss_after": torch_runs[-1]["rss_mib"],
                     "wall": None, "ttft_ratio": None, "decode_ratio": None, "stop": "length (EOS ignored)",
                     "adjust": info.get("adjust")})

    try:
        load_end = os.getloadavg()
    except OSError:
        load_end = (float("nan"),) * 3
    import torch
    import transformers
    lines = [
        "# OpenTSLM: tslm vs the PyTorch reference (issue 12)",
        "",
        f"SmolLM2-135M backbone, random-init checkpoints in the official layouts; {args.threads} threads on both sides, "
        f"{os.cpu_count()} cores; {args.reps} interleaved runs per engine (medians), torch after one warm-up; "
        f"decode = {args.decode - 1} cached forward steps (steps/s). torch OMP_WAIT_POLICY "
        f"{args.omp_wait_policy or '(default)'}; torch {torch.__version__}, transformers "
        f"{transformers.__version__}. Load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}; total {time.time() - t_start:.0f} s.",
        "",
        "| case | engine | positions | TTFT s (median, range) | decode steps/s | peak RSS MiB | wall s | "
        "TTFT PyTorch/tslm (target ≥ 3) | decode tslm/PyTorch (target ≥ 5) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rss = f"{r['rss']:.0f}" + (f" ({r['rss_after']:.0f} after)" if r["rss_after"] else "")
        wall = "" if r["wall"] is None else f"{r['wall']:.2f}"
        tr = "" if r["ttft_ratio"] is None else f"{r['ttft_ratio']:.2f}×"
        dr = "" if r["decode_ratio"] is None else f"{r['decode_ratio']:.2f}×"
        lines.append(f"| {r['case']} | {r['engine']} | {r['positions']} | {r['ttft']:.3f} ({r['ttft_lo']:.2f}–{r['ttft_hi']:.2f}) | "
                     f"{r['decode']:.1f} | {rss} | {wall} | {tr} | {dr} |")
    adj = {r["case"]: r["adjust"] for r in rows}
    lines += [
        "",
        "Prompt match: the torch prompt has exactly tslm's position count; ids added (+) or cut (−) from the torch "
        "pre prompt to get there: " + ", ".join(f"{c} {a:+d}" for c, a in adj.items()) + " (0 = the same tokens).",
        "tslm TTFT: positions / (pos/s) of the CLI's stats line (series in, first token's logits out; load excluded); "
        "RSS: /usr/bin/time peak of the process. PyTorch TTFT: raw series → normalization → encoder(+projector | "
        "+perceiver) → LLM forward (logits_to_keep=1) → argmax; RSS: the worker's ru_maxrss (loading included).",
    ]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.md)), exist_ok=True)
    with open(args.md, "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {args.md}")


if __name__ == "__main__":
    main()

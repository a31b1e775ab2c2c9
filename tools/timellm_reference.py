"""PyTorch reference for Time-LLM (ICLR 2024), float32 on CPU.

Written from the facts in ../shared/facts/chattime-timellm.md (our own words and code, not the
upstream repository). This module has no side effects on import: the fixture generator
(tools/make_timellm_fixtures.py) and, later, the full model (patch embedding, reprogramming,
truncated backbone, flatten head) import from it.

Part 1 (this file so far): RevIN without affine and the prompt-as-prefix text.

Shapes follow upstream: a batch is (B, T, N) (batch, time, channel). Every channel is its own
sample (channel independence): statistics and the prompt are computed per row of the
(B*N, T, 1) tensor that upstream builds with `permute(0, 2, 1).reshape(B * N, T, 1)`; row
b*N + n is channel n of batch item b. A 1-D series (T,) is treated as (1, T, 1).

The computations deliberately use the same torch calls on the same shapes as upstream, because
the float32 rounding of those calls is part of the observable behaviour (numbers are printed
with 17 significant digits, and the lag ranking depends on the last bit):
  - mean: torch.mean over dim 1 of (B, T, N); on CPU that is the cascade `sum` kernel followed by
    a division by T (for (1, T, 1) the sum runs over 8-float vector lanes on x86, also on AVX-512
    machines, because the sum kernel has no AVX-512 build);
  - variance: torch.var(unbiased=False) over dim 1: for (1, T, 1) two passes in float64 around
    the float32 mean, for N > 1 channels a float64 Welford pass; rounded to float32;
  - std = torch.sqrt(var + 1e-5): on x86 wheels MKL VML, whose generic kernel (used on AMD CPUs)
    is not correctly rounded (about 1 value in 6 is one ulp off);
  - trend: `diff(dim=1).sum(dim=1)` (the same cascade sum, over the T-1 differences), "upward"
    iff it is > 0: NOT the same as x[-1] - x[0] > 0 (see the fixture README);
  - lags: torch.topk(irfft(rfft(x) * conj(rfft(x))), 5) along time; irfft without `n` returns
    2 * (T // 2) samples, i.e. T - 1 for odd T.
"""
import torch

EPS = 1e-5
TOP_K = 5


def _as_btn(x):
    """(tensor (B, T, N) float32, was_1d)."""
    t = torch.as_tensor(x, dtype=torch.float32)
    if t.dim() == 1:
        return t.reshape(1, -1, 1), True
    if t.dim() != 3:
        raise ValueError(f"expected a series (T,) or a batch (B, T, N), got shape {tuple(t.shape)}")
    return t, False


def revin(x):
    """RevIN 'norm' without affine parameters.

    x: (T,) or (B, T, N). Returns (x_norm, mean, std) with x_norm shaped like x and mean / std of
    shape (B, 1, N) (or 0-d tensors for a 1-D series). mean is over time; std is
    sqrt(biased variance + 1e-5); x_norm = (x - mean) / std. All float32.
    """
    t, was_1d = _as_btn(x)
    mean = torch.mean(t, dim=1, keepdim=True)
    std = torch.sqrt(torch.var(t, dim=1, keepdim=True, unbiased=False) + EPS)
    x_norm = (t - mean) / std
    if was_1d:
        return x_norm.reshape(-1), mean.reshape(()), std.reshape(())
    return x_norm, mean, std


def revin_denorm(y, mean, std):
    """RevIN 'denorm' without affine parameters: y * std + mean (y: (B, H, N))."""
    return y * std + mean


def calculate_lags(rows):
    """Top-5 lags of the circular autocorrelation. rows: (R, T, 1) -> (R, 5) int64.

    irfft(rfft(x) * conj(rfft(x))) along time, then torch.topk(5). The two values r[k] and
    r[n-k] are mathematically equal; which one comes first depends on the FFT's float32
    rounding (MKL on x86 builds, pocketfft elsewhere) and on torch.topk's tie handling.
    """
    seq = rows.permute(0, 2, 1).contiguous()          # (R, 1, T)
    q = torch.fft.rfft(seq, dim=-1)
    k = torch.fft.rfft(seq, dim=-1)
    corr = torch.fft.irfft(q * torch.conj(k), dim=-1)  # (R, 1, 2 * (T // 2))
    mean_corr = torch.mean(corr, dim=1)                # (R, 2 * (T // 2)); mean of one row
    _, lags = torch.topk(mean_corr, TOP_K, dim=-1)
    return lags


def _rows(x_norm):
    t, _ = _as_btn(x_norm)
    b, steps, n = t.shape
    return t.permute(0, 2, 1).contiguous().reshape(b * n, steps, 1)


def prompt_statistics(x_norm):
    """Per-row prompt statistics of a NORMALIZED series or batch.

    Returns a dict for a 1-D series, else a list of dicts (row b*N + n). Each dict: min, max,
    median (Python floats of the float32 values; median = torch's LOWER median), trend (the
    float32 sum of the differences), upward (trend > 0), lags (list of 5 ints) and the strings
    min_str, max_str, median_str, lags_str exactly as they appear in the prompt.
    """
    t, was_1d = _as_btn(x_norm)
    rows = _rows(t)
    min_values = torch.min(rows, dim=1)[0]
    max_values = torch.max(rows, dim=1)[0]
    medians = torch.median(rows, dim=1).values
    lags = calculate_lags(rows)
    trends = rows.diff(dim=1).sum(dim=1)
    out = []
    for r in range(rows.shape[0]):
        mn = min_values[r].tolist()[0]
        mx = max_values[r].tolist()[0]
        md = medians[r].tolist()[0]
        lag_list = lags[r].tolist()
        trend = trends[r].tolist()[0]
        out.append({
            "min": mn, "max": mx, "median": md,
            "trend": trend, "upward": bool(trends[r] > 0),
            "lags": lag_list,
            "min_str": str(mn), "max_str": str(mx), "median_str": str(md),
            "lags_str": str(lag_list),
        })
    return out[0] if was_1d else out


def prompt_text(description, pred_len, seq_len, stats):
    """The prompt for one row, from a prompt_statistics dict (concatenated exactly as upstream:
    no space after the description, 'top 5 lags are : ', the odd end marker)."""
    return (
        f"<|start_prompt|>Dataset description: {description}"
        f"Task description: forecast the next {str(pred_len)} steps given the previous "
        f"{str(seq_len)} steps information; "
        "Input statistics: "
        f"min value {stats['min_str']}, "
        f"max value {stats['max_str']}, "
        f"median value {stats['median_str']}, "
        f"the trend of input is {'upward' if stats['upward'] else 'downward'}, "
        f"top {TOP_K} lags are : {stats['lags_str']}<|<end_prompt>|>"
    )


def prompt(description, pred_len, seq_len, x_norm):
    """The prompt string of a normalized 1-D series, or the list of prompts (row b*N + n) of a
    normalized (B, T, N) batch."""
    stats = prompt_statistics(x_norm)
    if isinstance(stats, dict):
        return prompt_text(description, pred_len, seq_len, stats)
    return [prompt_text(description, pred_len, seq_len, s) for s in stats]

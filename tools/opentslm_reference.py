"""PyTorch reference for the two OpenTSLM architectures (SoftPrompt and Flamingo).

Written from the architecture facts in formats/opentslm.md (section names below refer to it),
not from the upstream code. The module and parameter names are chosen so that `state_dict()`
produces the official checkpoint key layout ("Checkpoint layouts"), which is what a compatible
runtime reads:

  SoftPrompt ("SoftPrompt")
    TransformerCNNEncoder   encoder_state:   patch_embed.weight [128,1,4], pos_embed [1,P,128],
                            input_norm.{weight,bias}, encoder.layers.i.{self_attn.in_proj_weight,
                            self_attn.in_proj_bias, self_attn.out_proj.*, linear1.*, linear2.*,
                            norm1.*, norm2.*}
    MLPProjector            projector_state: projector.0.* (LayerNorm), projector.1.* (Linear)
    SoftPromptModel         sequence assembly, forward, greedy decoding (with or without a PEFT
                            LoRA-wrapped LLM)

  Flamingo ("Flamingo")
    CNNTokenizer            vision_encoder.{patch_embed.weight, pos_embed, input_norm.*}
    PerceiverResampler      perceiver.{latents, layers.i.0.*, layers.i.1.{0,1,3}, norm.*}
    GatedCrossAttentionBlock  lang_encoder.model.layers.i.gated_cross_attn_layer.*
    FlamingoLayer           wraps a Hugging Face decoder layer: cross-attention first
    FlamingoModel           vision_encoder, perceiver, lang_encoder (+ the alias module lists
                            old_decoder_blocks / gated_cross_attn_layers on the language model)
    OpenTSLMFlamingoCheckpoint  holds the FlamingoModel twice (`model`, `llm`) so its state_dict
                            has every key under both prefixes, as the official files do.

Hyperparameters that a checkpoint does NOT record and a runtime must take as constants: patch
size 4 (also visible in patch_embed.weight), encoder width 128, encoder heads 8, perceiver and
cross-attention heads 8 (dim_head = inner_dim / 8; upstream inner_dim is 512, so dim_head 64),
LayerNorm eps 1e-5, exact (erf) GELU everywhere in the OpenTSLM parts, no dropout at inference.
Everything else (layer counts, FFN widths, max_patches, latent count, inner dims, FF widths,
LLM hidden size) is read from tensor names and shapes.

All computations here are float32 on CPU.
"""
import torch
from torch import nn

PATCH_SIZE = 4
ENCODER_DIM = 128
ENCODER_HEADS = 8
XATTN_HEADS = 8  # perceiver and gated cross-attention heads (upstream: 8 heads x 64)


# --------------------------------------------------------------------------------------------
# Input pipeline (formats/opentslm.md, "Input pipeline")
# --------------------------------------------------------------------------------------------

def normalize(series, kind):
    """Per-series normalization of the task presets (formats/opentslm.md, "Prompts and
    normalization presets"). Returns (normalized, mean, std).

    kind:
      "har"       (x - mean) / max(unbiased std, 1e-6)            HAR-CoT
      "tsqa"      (x - mean) / (unbiased std + 1e-8)              TSQA
      "m4"        (x - mean) / unbiased std if std > 0 else x-mean  M4 captioning
      "sleep"     (x - mean) / max(population std, 1e-6)          Sleep-CoT
      "ecg"       (x - mean) / population std if std > 1e-6 else x-mean  ECG-QA-CoT
      "none"      unchanged (mean/std still reported)
    Statistics are computed in float64 and the result is cast to float32.
    """
    x = torch.as_tensor(series, dtype=torch.float64)
    mean = x.mean()
    std_unbiased = x.std(unbiased=True) if x.numel() > 1 else torch.tensor(0.0, dtype=torch.float64)
    std_pop = x.std(unbiased=False)
    if kind == "har":
        std = std_unbiased
        y = (x - mean) / torch.clamp(std, min=1e-6)
    elif kind == "tsqa":
        std = std_unbiased
        y = (x - mean) / (std + 1e-8)
    elif kind == "m4":
        std = std_unbiased
        y = (x - mean) / std if std > 0 else x - mean
    elif kind == "sleep":
        std = std_pop
        y = (x - mean) / torch.clamp(std, min=1e-6)
    elif kind == "ecg":
        std = std_pop
        y = (x - mean) / std if std > 1e-6 else x - mean
    elif kind == "none":
        std = std_unbiased
        y = x
    else:
        raise ValueError(f"unknown normalization {kind!r}")
    return y.to(torch.float32), float(mean), float(std)


def pad_series(series_list):
    """Zero-pads every series at the END to the longest length rounded up to a multiple of 4.

    Returns a float32 tensor [n_series, padded_len].
    """
    if not series_list:
        raise ValueError("no series")
    longest = max(len(s) for s in series_list)
    padded = ((longest + PATCH_SIZE - 1) // PATCH_SIZE) * PATCH_SIZE
    out = torch.zeros(len(series_list), padded, dtype=torch.float32)
    for i, s in enumerate(series_list):
        t = torch.as_tensor(s, dtype=torch.float32)
        out[i, : t.numel()] = t
    return out


# --------------------------------------------------------------------------------------------
# Encoders (formats/opentslm.md, "SoftPrompt: patch encoder", "Flamingo: CNN tokenizer")
# --------------------------------------------------------------------------------------------

class _PatchFrontEnd(nn.Module):
    """Conv1d(1 -> 128, kernel 4, stride 4, no bias) + pos_embed[:, :P] + LayerNorm(128)."""

    def __init__(self, max_patches):
        super().__init__()
        self.patch_embed = nn.Conv1d(1, ENCODER_DIM, kernel_size=PATCH_SIZE, stride=PATCH_SIZE, bias=False)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_patches, ENCODER_DIM))
        self.input_norm = nn.LayerNorm(ENCODER_DIM, eps=1e-5)

    def front(self, x):
        """x: [B, L] with L a multiple of 4 -> [B, L/4, 128]."""
        if x.dim() != 2 or x.shape[1] % PATCH_SIZE != 0:
            raise ValueError(f"series batch must be [B, 4k], got {tuple(x.shape)}")
        patches = self.patch_embed(x.unsqueeze(1)).transpose(1, 2)  # [B, P, 128]
        n = patches.shape[1]
        if n > self.pos_embed.shape[1]:
            raise ValueError(f"{n} patches exceed max_patches {self.pos_embed.shape[1]}")
        return self.input_norm(patches + self.pos_embed[:, :n, :])


class TransformerCNNEncoder(_PatchFrontEnd):
    """SoftPrompt encoder: patch front end + post-norm TransformerEncoder (no mask, no final norm).

    Upstream: 6 layers, FFN 1024, max_patches 1024 (older checkpoints: 2600, 3000, 2051).
    """

    def __init__(self, num_layers=6, ff_dim=1024, max_patches=1024):
        super().__init__(max_patches)
        layer = nn.TransformerEncoderLayer(
            d_model=ENCODER_DIM,
            nhead=ENCODER_HEADS,
            dim_feedforward=ff_dim,
            dropout=0.0,
            activation="gelu",  # exact erf GELU
            batch_first=True,
            norm_first=False,  # post-norm
            layer_norm_eps=1e-5,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(self.front(x))


class CNNTokenizer(_PatchFrontEnd):
    """Flamingo encoder: only the patch front end (no transformer layers)."""

    def forward(self, x):
        return self.front(x)


class MLPProjector(nn.Module):
    """LayerNorm(128) -> Linear(128 -> hidden) -> exact GELU -> Dropout(0). Keys projector.0/1."""

    def __init__(self, hidden_size):
        super().__init__()
        self.projector = nn.Sequential(
            nn.LayerNorm(ENCODER_DIM, eps=1e-5),
            nn.Linear(ENCODER_DIM, hidden_size),
            nn.GELU(),
            nn.Dropout(0.0),
        )

    def forward(self, x):
        return self.projector(x)


# --------------------------------------------------------------------------------------------
# SoftPrompt model (formats/opentslm.md, "SoftPrompt")
# --------------------------------------------------------------------------------------------

class SoftPromptModel:
    """OpenTSLM-SP forward pass around a Hugging Face causal LM (optionally PEFT-wrapped).

    Sequence: [pre_ids][desc_0 ids][soft_0]...[desc_{n-1} ids][soft_{n-1}][post_ids], where every
    id list already carries its own BOS (each text segment is tokenized separately with special
    tokens). Text ids go through the LLM input embedding (for Gemma 3 that includes the
    x sqrt(hidden) scale); soft tokens go in as they come out of the projector (NOT scaled).
    Positions run 0..T-1 continuously through the soft tokens.
    """

    def __init__(self, llm, encoder, projector):
        self.llm = llm
        self.encoder = encoder
        self.projector = projector

    def encode_series(self, padded):
        """padded: [n_series, L] -> (encoder output [n, L/4, 128], soft tokens [n, L/4, H])."""
        enc = self.encoder(padded)
        return enc, self.projector(enc)

    def build_inputs(self, pre_ids, desc_ids, post_ids, padded):
        if len(desc_ids) != padded.shape[0]:
            raise ValueError("one description per series")
        embed = self.llm.get_input_embeddings()
        enc, soft = self.encode_series(padded)
        parts, layout = [], []
        pos = 0

        def add_text(name, ids):
            nonlocal pos
            parts.append(embed(torch.tensor([ids], dtype=torch.long))[0])
            layout.append({"kind": "text", "segment": name, "start": pos, "length": len(ids)})
            pos += len(ids)

        add_text("pre_prompt", pre_ids)
        for i, ids in enumerate(desc_ids):
            add_text(f"series_{i}_description", ids)
            parts.append(soft[i].to(parts[0].dtype))
            layout.append({"kind": "soft", "series": i, "start": pos, "length": soft.shape[1]})
            pos += soft.shape[1]
        add_text("post_prompt", post_ids)
        return torch.cat(parts, dim=0).unsqueeze(0), layout, enc, soft

    def logits(self, inputs_embeds):
        return self.llm(inputs_embeds=inputs_embeds, use_cache=False).logits[0]

    def greedy(self, inputs_embeds, n):
        """Cached greedy decoding, EOS ignored. Returns (ids, per-step logits)."""
        out = self.llm(inputs_embeds=inputs_embeds, use_cache=True)
        cache = out.past_key_values
        row = out.logits[0, -1]
        ids, rows = [], []
        for _ in range(n):
            rows.append(row)
            tok = int(row.argmax())
            ids.append(tok)
            out = self.llm(input_ids=torch.tensor([[tok]]), past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            row = out.logits[0, -1]
        return ids, rows

    def greedy_no_cache(self, inputs_embeds, n):
        """Recomputes the whole sequence every step (embedding generated ids): cross-check."""
        embed = self.llm.get_input_embeddings()
        seq = inputs_embeds
        ids = []
        for _ in range(n):
            row = self.llm(inputs_embeds=seq, use_cache=False).logits[0, -1]
            tok = int(row.argmax())
            ids.append(tok)
            seq = torch.cat([seq, embed(torch.tensor([[tok]]))], dim=1)
        return ids


# --------------------------------------------------------------------------------------------
# Flamingo parts (formats/opentslm.md, "Flamingo"; open_flamingo helpers semantics)
# --------------------------------------------------------------------------------------------

def feed_forward(dim, hidden):
    """LayerNorm -> Linear(dim -> hidden) -> GELU -> Linear(hidden -> dim), no biases (keys 0,1,3)."""
    return nn.Sequential(
        nn.LayerNorm(dim, eps=1e-5),
        nn.Linear(dim, hidden, bias=False),
        nn.GELU(),
        nn.Linear(hidden, dim, bias=False),
    )


def _split_heads(t, heads):
    b, n, inner = t.shape
    return t.view(b, n, heads, inner // heads).transpose(1, 2)  # [b, h, n, d]


def _merge_heads(t):
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


class PerceiverAttention(nn.Module):
    """q from LN(latents); k, v from [LN(media) ; LN(latents)]; 8 heads; scale dim_head^-0.5."""

    def __init__(self, dim, inner):
        super().__init__()
        self.heads = XATTN_HEADS
        self.scale = (inner // XATTN_HEADS) ** -0.5
        self.norm_media = nn.LayerNorm(dim, eps=1e-5)
        self.norm_latents = nn.LayerNorm(dim, eps=1e-5)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media, latents):
        """media [b, m, dim], latents [b, n, dim] -> [b, n, dim] (without the residual)."""
        media = self.norm_media(media)
        latents = self.norm_latents(latents)
        q = _split_heads(self.to_q(latents), self.heads) * self.scale
        k, v = self.to_kv(torch.cat([media, latents], dim=1)).chunk(2, dim=-1)
        k, v = _split_heads(k, self.heads), _split_heads(v, self.heads)
        attn = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return self.to_out(_merge_heads(attn @ v))


class PerceiverResampler(nn.Module):
    """Upstream: dim 128, depth 6, 64 latents, inner 512 (8 x 64), FF hidden 512 (mult 4)."""

    def __init__(self, dim=ENCODER_DIM, depth=6, num_latents=64, inner=512, ff_hidden=None):
        super().__init__()
        self.latents = nn.Parameter(torch.zeros(num_latents, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, inner), feed_forward(dim, ff_hidden or 4 * dim)])
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, media):
        """media [b, m, dim] (all patches of all series of a sample) -> [b, num_latents, dim]."""
        latents = self.latents.unsqueeze(0).expand(media.shape[0], -1, -1)
        for attn, ff in self.layers:
            latents = attn(media, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


class MaskedCrossAttention(nn.Module):
    """Text attends to the perceiver latents of the media it belongs to.

    text_time t (number of <image> tokens up to and including the token), media time 1:
      t == 0  -> output exactly zero
      t == 1  -> ordinary softmax attention over the latents
      t >= 2  -> every score filled with -max(float32) before the (max-subtracted) softmax, so
                 the weights are uniform: the output is to_out(mean of V over the latents).
    """

    def __init__(self, dim, dim_visual, inner):
        super().__init__()
        self.heads = XATTN_HEADS
        self.scale = (inner // XATTN_HEADS) ** -0.5
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim_visual, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x, media, text_time):
        """x [b, T, dim], media [b, n, dim_visual], text_time [b, T] (long)."""
        q = _split_heads(self.to_q(self.norm(x)), self.heads) * self.scale
        k, v = self.to_kv(media).chunk(2, dim=-1)
        k, v = _split_heads(k, self.heads), _split_heads(v, self.heads)
        scores = q @ k.transpose(-1, -2)  # [b, h, T, n]
        allowed = (text_time == 1)[:, None, :, None]
        scores = scores.masked_fill(~allowed, -torch.finfo(scores.dtype).max)
        scores = scores - scores.amax(dim=-1, keepdim=True)
        attn = torch.softmax(scores, dim=-1)
        attn = attn.masked_fill((text_time == 0)[:, None, :, None], 0.0)
        return self.to_out(_merge_heads(attn @ v))


class GatedCrossAttentionBlock(nn.Module):
    """x += tanh(attn_gate) * xattn(x); x += tanh(ff_gate) * FF(x). Upstream inner 512, FF 4H."""

    def __init__(self, dim, dim_visual, inner=512, ff_hidden=None):
        super().__init__()
        self.attn = MaskedCrossAttention(dim, dim_visual, inner)
        self.attn_gate = nn.Parameter(torch.tensor([0.0]))
        self.ff = feed_forward(dim, ff_hidden or 4 * dim)
        self.ff_gate = nn.Parameter(torch.tensor([0.0]))

    def forward(self, x, media, text_time):
        x = self.attn(x, media, text_time) * self.attn_gate.tanh() + x
        x = self.ff(x) * self.ff_gate.tanh() + x
        return x


class FlamingoLayer(nn.Module):
    """Runs the gated cross-attention block, then the original Hugging Face decoder layer.

    `media` ([b, n, 128] perceiver latents) and `text_time` ([b, T] for the tokens of the current
    forward call) are set by FlamingoModel before each call.
    """

    def __init__(self, gated_cross_attn_layer, decoder_layer):
        super().__init__()
        self.gated_cross_attn_layer = gated_cross_attn_layer
        self.decoder_layer = decoder_layer
        self.media = None
        self.text_time = None

    @property
    def attention_type(self):  # Gemma 3 picks the mask by the layer's attention type
        return getattr(self.decoder_layer, "attention_type", None)

    def forward(self, hidden_states, *args, **kwargs):
        if self.media is None or self.text_time is None:
            raise RuntimeError("FlamingoLayer used before conditioning on media")
        hidden_states = self.gated_cross_attn_layer(hidden_states, self.media, self.text_time)
        return self.decoder_layer(hidden_states, *args, **kwargs)


class FlamingoModel(nn.Module):
    """vision_encoder + perceiver + lang_encoder (a HF CausalLM whose decoder layers are wrapped).

    The language model gets two alias ModuleLists, `old_decoder_blocks` (the original decoder
    layers) and `gated_cross_attn_layers` (the blocks), as open_flamingo's mixin adds them, so the
    state dict holds those aliases too.
    """

    def __init__(self, vision_encoder, perceiver, lang_encoder, media_token_id, xattn_inner=512,
                 xattn_ff_hidden=None):
        super().__init__()
        self.vision_encoder = vision_encoder
        self.perceiver = perceiver
        self.lang_encoder = lang_encoder
        self.media_token_id = media_token_id
        hidden = lang_encoder.config.hidden_size
        originals = list(lang_encoder.model.layers)
        lang_encoder.old_decoder_blocks = nn.ModuleList(originals)
        lang_encoder.gated_cross_attn_layers = nn.ModuleList(
            GatedCrossAttentionBlock(hidden, ENCODER_DIM, xattn_inner, xattn_ff_hidden) for _ in originals
        )
        lang_encoder.model.layers = nn.ModuleList(
            FlamingoLayer(x, d) for x, d in zip(lang_encoder.gated_cross_attn_layers, originals)
        )
        self._prompt_images = 0

    def encode_media(self, padded):
        """padded [n_series, L] -> (encoder output [n, L/4, 128], latents [1, n_latents, 128]).

        All patches of all series form ONE media item (concatenated; no frame/time embeddings).
        """
        enc = self.vision_encoder(padded)
        media = enc.reshape(1, -1, ENCODER_DIM)
        return enc, self.perceiver(media)

    def _condition(self, latents, text_time):
        for layer in self.lang_encoder.model.layers:
            layer.media = latents
            layer.text_time = text_time

    @staticmethod
    def text_time(ids, media_token_id):
        t = torch.as_tensor(ids, dtype=torch.long).view(1, -1)
        return torch.cumsum((t == media_token_id).long(), dim=-1)

    def logits(self, ids, latents):
        tt = self.text_time(ids, self.media_token_id)
        self._condition(latents, tt)
        return self.lang_encoder(input_ids=torch.tensor([ids]), use_cache=False).logits[0], tt

    def greedy(self, ids, latents, n):
        """Cached greedy decoding, EOS ignored; every new token has text time = #<image> in ids."""
        tt = self.text_time(ids, self.media_token_id)
        self._condition(latents, tt)
        out = self.lang_encoder(input_ids=torch.tensor([ids]), use_cache=True)
        cache = out.past_key_values
        row = out.logits[0, -1]
        n_images = int(tt[0, -1])
        gen, rows = [], []
        for _ in range(n):
            rows.append(row)
            tok = int(row.argmax())
            gen.append(tok)
            self._condition(latents, torch.full((1, 1), n_images, dtype=torch.long))
            out = self.lang_encoder(input_ids=torch.tensor([[tok]]), past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            row = out.logits[0, -1]
        return gen, rows

    def greedy_no_cache(self, ids, latents, n):
        seq = list(ids)
        gen = []
        for _ in range(n):
            row, _ = self.logits(seq, latents)
            tok = int(row[-1].argmax())
            gen.append(tok)
            seq.append(tok)
        return gen


class OpenTSLMFlamingoCheckpoint(nn.Module):
    """The upstream wrapper stores the Flamingo model as both `model` and `llm`, so its
    state_dict (the checkpoint's `model_state`) has every key twice, with both prefixes."""

    def __init__(self, flamingo):
        super().__init__()
        self.model = flamingo
        self.llm = flamingo


def lora_merged_weight(weight, lora_a, lora_b, alpha, r):
    """W' = W + (alpha / r) * B @ A (PEFT LoRA, no rsLoRA, no DoRA)."""
    return weight + (alpha / r) * (lora_b @ lora_a)


def sums(t):
    """Checksums of a tensor: float64 sum and sum of absolute values."""
    t = t.detach().to(torch.float64)
    return {"sum": float(t.sum()), "abs_sum": float(t.abs().sum())}


__all__ = [
    "PATCH_SIZE", "ENCODER_DIM", "ENCODER_HEADS", "XATTN_HEADS",
    "normalize", "pad_series",
    "TransformerCNNEncoder", "CNNTokenizer", "MLPProjector", "SoftPromptModel",
    "feed_forward", "PerceiverAttention", "PerceiverResampler", "MaskedCrossAttention",
    "GatedCrossAttentionBlock", "FlamingoLayer", "FlamingoModel", "OpenTSLMFlamingoCheckpoint",
    "lora_merged_weight", "sums",
]

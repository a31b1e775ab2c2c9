"""PyTorch reference for the whole Time-LLM forecaster (ICLR 2024), float32 on CPU.

Written from the facts in ../shared/facts/chattime-timellm.md and issue 10 (our own words and
code, not the upstream repository). RevIN and the prompt text come from tools/timellm_reference.py;
this file adds the trainable parts, the frozen truncated backbone, the checkpoint export and a
loader.

Model (one channel = one sample, batch 1; `forward_channel` returns every intermediate):
    x        [L] raw float32, L = seq_len (a longer history is cut to its LAST seq_len steps)
    1. RevIN without affine (timellm_reference.revin, the (1, L, 1) shape upstream's one-channel
       samples have): mean over time, std = sqrt(biased var + 1e-5), x_norm = (x - mean) / std.
    2. prompt = timellm_reference.prompt(description, pred_len, seq_len, x_norm); token ids =
       tokenizer(prompt, return_tensors="pt", padding=True, truncation=True,
       max_length=2048).input_ids (the HF call upstream makes: the Llama tokenizer puts BOS first,
       GPT-2's adds nothing); embedded with the LLM's input embedding -> [T, d_llm].
    3. patches: x_norm followed by `stride` copies of its last value (ReplicationPad1d((0,
       stride))), unfold(size=patch_len, step=stride) -> [P, patch_len],
       P = int((seq_len - patch_len) / stride + 2).
    4. patch embedding: Conv1d(patch_len -> d_model, kernel 3, padding 1, padding_mode
       'circular', bias False) over the patches arranged [1, patch_len, P] (channels = position
       in the patch, length = patch index; the circular wrap is over the PATCH axis), transposed
       -> [P, d_model]. No positional embedding; dropout is inactive at inference.
    5. text prototypes: mapping_layer = Linear(vocab -> num_tokens) applied to the transposed
       word-embedding matrix: prototypes = mapping_layer(W_emb.T).T -> [num_tokens, d_llm]
       (input independent).
    6. reprogramming (d_keys = d_ff, as upstream passes d_ff into the layer's d_keys slot; E =
       d_keys, H = n_heads): Q = query_projection(patch_emb) [P, H, E],
       K = key_projection(prototypes), V = value_projection(prototypes) [S, H, E];
       A = softmax((1/sqrt(E)) * einsum('lhe,she->hls', Q, K), dim=-1);
       out = einsum('hls,she->lhe', A, V).reshape(P, H*E) -> out_projection -> [P, d_llm].
    7. LLM input = concat(prompt embeddings [T, d_llm], reprogrammed [P, d_llm]); the bare
       backbone (LlamaModel / GPT2Model, no LM head) keeps only its first llm_layers blocks and
       runs on inputs_embeds with no attention mask (causal); hidden = last_hidden_state (after
       the final norm) [T + P, d_llm]. GPT-2 adds its learned positions 0..T+P-1 (wpe); Llama
       uses RoPE positions 0..T+P-1.
    8. head: dec = hidden[:, :d_ff].T [d_ff, T + P] -> last P columns [d_ff, P] -> flatten with
       the patch index fastest (element c*P + p) -> Linear(d_ff*P -> pred_len).
    9. forecast = y * std + mean.

Checkpoint ("upstream" layout) written by `export(folder)`:
    checkpoint.pt  torch.save(model.state_dict()); keys, in state_dict order:
                   word_embeddings [vocab, d_llm]  (the SAME tensor as the embedding weight
                                                    below; torch.save stores it once)
                   llm_model.*  the truncated bare LLM's own keys (Llama: embed_tokens.weight,
                                layers.{i}.self_attn.{q,k,v,o}_proj.weight,
                                layers.{i}.mlp.{gate,up,down}_proj.weight,
                                layers.{i}.{input,post_attention}_layernorm.weight, norm.weight;
                                GPT-2: wte.weight, wpe.weight, h.{i}.ln_1.*, h.{i}.attn.c_attn.*,
                                h.{i}.attn.c_proj.*, h.{i}.ln_2.*, h.{i}.mlp.c_fc.*,
                                h.{i}.mlp.c_proj.*, ln_f.*), i < llm_layers
                   patch_embedding.value_embedding.tokenConv.weight [d_model, patch_len, 3]
                   mapping_layer.weight [num_tokens, vocab], mapping_layer.bias [num_tokens]
                   reprogramming_layer.query_projection.{weight [d_ff*H, d_model], bias}
                   reprogramming_layer.key_projection.{weight [d_ff*H, d_llm], bias}
                   reprogramming_layer.value_projection.{weight [d_ff*H, d_llm], bias}
                   reprogramming_layer.out_projection.{weight [d_llm, d_ff*H], bias [d_llm]}
                   output_projection.linear.{weight [pred_len, d_ff*P], bias [pred_len]}
    timellm.json   {"seq_len", "pred_len", "patch_len", "stride", "d_model", "d_ff", "n_heads",
                    "num_tokens", "description", "llm_layers"}

Upstream behaviours reproduced on purpose (each one changes numbers):
  - BOS: the prompt is tokenized by a plain HF tokenizer call, so a Llama (SentencePiece,
    add_bos_token) tokenizer puts <s> first and GPT-2's adds no special token.
  - the tokenizer's pad token is set to its EOS token (or a new '[PAD]' special token when it has
    no EOS), as upstream does; it only matters for batched prompts (`forecast_batched_upstream`).
  - truncation: the bare backbone is built from a config whose layer count is llm_layers, so
    only the first llm_layers blocks are loaded, and the final norm (norm / ln_f) is still applied
    after the last kept block.
  - d_keys = d_ff in the reprogramming layer (not d_model // n_heads); the softmax scale is
    1/sqrt(d_ff), multiplied into the scores before the softmax.
  - only the first d_ff hidden channels and the last P positions reach the head; flatten order
    (channel, patch) with the patch fastest.
  - word_embeddings is a second state-dict name for the embedding matrix.
Not reproduced: upstream tokenizes a whole training batch together (padding=True, no attention
mask, so padded positions are attended and a channel's forecast depends on the other prompts in
its batch; the Llama tokenizer pads on the left). Here every channel is its own batch of one;
`forecast_batched_upstream` shows the batched behaviour for comparison only. bf16: upstream runs
the LLM and the patch path in bfloat16; this reference is float32 throughout.
"""
import json
import math
import os
import sys
import tempfile

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timellm_reference as ref  # noqa: E402

CHECKPOINT_FILE = "checkpoint.pt"
SIDECAR_FILE = "timellm.json"
SIDECAR_KEYS = ("seq_len", "pred_len", "patch_len", "stride", "d_model", "d_ff", "n_heads",
                "num_tokens", "description", "llm_layers")
PROMPT_MAX_LENGTH = 2048


def patch_count(seq_len, patch_len, stride):
    """P = int((seq_len - patch_len) / stride + 2), as upstream computes patch_nums."""
    return int((seq_len - patch_len) / stride + 2)


class TokenEmbedding(nn.Module):
    def __init__(self, patch_len, d_model):
        super().__init__()
        self.tokenConv = nn.Conv1d(patch_len, d_model, kernel_size=3, padding=1,
                                   padding_mode="circular", bias=False)

    def forward(self, patches):
        """patches [B, P, patch_len] -> [B, P, d_model]."""
        return self.tokenConv(patches.permute(0, 2, 1)).transpose(1, 2)


class PatchEmbedding(nn.Module):
    def __init__(self, patch_len, stride, d_model):
        super().__init__()
        self.patch_len = patch_len
        self.stride = stride
        self.padding_patch_layer = nn.ReplicationPad1d((0, stride))
        self.value_embedding = TokenEmbedding(patch_len, d_model)

    def patches(self, x):
        """x [B, L] -> [B, P, patch_len]: append `stride` copies of the last value, unfold."""
        padded = self.padding_patch_layer(x.unsqueeze(1)).squeeze(1)
        return padded.unfold(-1, self.patch_len, self.stride)

    def forward(self, x):
        p = self.patches(x)
        return self.value_embedding(p), p


class ReprogrammingLayer(nn.Module):
    """Cross-attention from patch embeddings (queries) to the text prototypes (keys, values)."""

    def __init__(self, d_model, n_heads, d_keys, d_llm):
        super().__init__()
        self.n_heads = n_heads
        self.d_keys = d_keys
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_llm, d_keys * n_heads)
        self.value_projection = nn.Linear(d_llm, d_keys * n_heads)
        self.out_projection = nn.Linear(d_keys * n_heads, d_llm)

    def forward(self, target, source, value, return_attention=False):
        """target [L, d_model], source/value [S, d_llm] -> [L, d_llm] (and A [H, L, S])."""
        L = target.shape[0]
        S = source.shape[0]
        H = self.n_heads
        q = self.query_projection(target).view(L, H, -1)
        k = self.key_projection(source).view(S, H, -1)
        v = self.value_projection(value).view(S, H, -1)
        E = q.shape[-1]
        scale = 1.0 / math.sqrt(E)
        scores = torch.einsum("lhe,she->hls", q, k)
        A = torch.softmax(scale * scores, dim=-1)
        out = torch.einsum("hls,she->lhe", A, v).reshape(L, H * E)
        out = self.out_projection(out)
        return (out, A) if return_attention else out


class FlattenHead(nn.Module):
    def __init__(self, nf, target_window):
        super().__init__()
        self.flatten = nn.Flatten(start_dim=-2)
        self.linear = nn.Linear(nf, target_window)

    def forward(self, x):
        """x [..., d_ff, P] -> [..., pred_len] (flattened with the patch index fastest)."""
        return self.linear(self.flatten(x))


def llm_layer_count(llm):
    return int(llm.config.num_hidden_layers)


def set_upstream_pad_token(tokenizer):
    """pad = EOS when the tokenizer has one, else a new '[PAD]' special token (upstream)."""
    if tokenizer.eos_token:
        tokenizer.pad_token = tokenizer.eos_token
    else:
        tokenizer.add_special_tokens({"pad_token": "[PAD]"})
        tokenizer.pad_token = "[PAD]"


class TimeLLM(nn.Module):
    def __init__(self, llm, tokenizer, seq_len, pred_len, patch_len, stride, d_model, d_ff,
                 n_heads, num_tokens, description):
        super().__init__()
        self.seq_len = seq_len
        self.pred_len = pred_len
        self.patch_len = patch_len
        self.stride = stride
        self.d_model = d_model
        self.d_ff = d_ff
        self.n_heads = n_heads
        self.num_tokens = num_tokens
        self.description = description
        self.d_llm = int(llm.config.hidden_size)
        if d_ff > self.d_llm:
            raise ValueError(f"d_ff {d_ff} > the LLM width {self.d_llm}: the head reads the first d_ff hidden channels")
        if seq_len < patch_len:
            raise ValueError("seq_len must be at least patch_len")

        self.llm_model = llm
        for p in self.llm_model.parameters():
            p.requires_grad = False
        self.tokenizer = tokenizer
        set_upstream_pad_token(self.tokenizer)

        self.patch_embedding = PatchEmbedding(patch_len, stride, d_model)
        self.word_embeddings = self.llm_model.get_input_embeddings().weight  # an alias
        self.vocab_size = self.word_embeddings.shape[0]
        self.mapping_layer = nn.Linear(self.vocab_size, num_tokens)
        self.reprogramming_layer = ReprogrammingLayer(d_model, n_heads, d_ff, self.d_llm)
        self.patch_nums = patch_count(seq_len, patch_len, stride)
        self.head_nf = d_ff * self.patch_nums
        self.output_projection = FlattenHead(self.head_nf, pred_len)
        self.eval()

    @property
    def llm_layers(self):
        return llm_layer_count(self.llm_model)

    def sidecar(self):
        return {"seq_len": self.seq_len, "pred_len": self.pred_len, "patch_len": self.patch_len,
                "stride": self.stride, "d_model": self.d_model, "d_ff": self.d_ff,
                "n_heads": self.n_heads, "num_tokens": self.num_tokens,
                "description": self.description, "llm_layers": self.llm_layers}

    # -- pieces ---------------------------------------------------------------------------------

    def prototypes(self):
        """[num_tokens, d_llm] = mapping_layer(word_embeddings.T).T."""
        return self.mapping_layer(self.word_embeddings.permute(1, 0)).permute(1, 0)

    def tokenize(self, prompts):
        return self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                              max_length=PROMPT_MAX_LENGTH).input_ids

    def run_llm(self, inputs_embeds):
        return self.llm_model(inputs_embeds=inputs_embeds, use_cache=False).last_hidden_state

    def head(self, hidden):
        """hidden [..., T + P, d_llm] -> normalized forecast [..., pred_len]."""
        dec = hidden[..., :, : self.d_ff].transpose(-1, -2)  # [..., d_ff, T + P]
        return self.output_projection(dec[..., -self.patch_nums:])

    # -- inference ------------------------------------------------------------------------------

    @torch.no_grad()
    def forward_channel(self, x):
        """x [seq_len] float32 -> dict of every intermediate (see the module docstring)."""
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() != 1 or x.shape[0] != self.seq_len:
            raise ValueError(f"expected a series of {self.seq_len} steps, got shape {tuple(x.shape)}")
        x_norm, mean, std = ref.revin(x)
        text = ref.prompt(self.description, self.pred_len, self.seq_len, x_norm)
        ids = self.tokenize(text)[0]
        prompt_emb = self.llm_model.get_input_embeddings()(ids)           # [T, d_llm]
        patch_emb, patches = self.patch_embedding(x_norm.unsqueeze(0))
        patch_emb, patches = patch_emb[0], patches[0]                       # [P, d_model]
        protos = self.prototypes()                                          # [S, d_llm]
        reprog, attn = self.reprogramming_layer(patch_emb, protos, protos, return_attention=True)
        llm_in = torch.cat([prompt_emb, reprog], dim=0)                     # [T + P, d_llm]
        hidden = self.run_llm(llm_in.unsqueeze(0))[0]                       # [T + P, d_llm]
        y = self.head(hidden)                                               # [pred_len]
        forecast = ref.revin_denorm(y, mean, std)
        return {
            "x": x, "x_norm": x_norm, "mean": mean, "std": std,
            "prompt": text, "prompt_ids": ids,
            "prompt_embeddings": prompt_emb, "patches": patches, "patch_embedding": patch_emb,
            "prototypes": protos, "attention": attn, "reprogrammed": reprog,
            "llm_input": llm_in, "hidden": hidden,
            "head_input": hidden[:, : self.d_ff].T[:, -self.patch_nums:],
            "forecast_normalized": y, "forecast": forecast,
        }

    def window(self, history):
        h = torch.as_tensor(history, dtype=torch.float32)
        if h.dim() == 1:
            h = h.unsqueeze(0)
        if h.dim() != 2 or h.shape[1] < self.seq_len:
            raise ValueError(f"history must be [channels, >= {self.seq_len}] steps, got {tuple(h.shape)}")
        return h[:, -self.seq_len:]

    @torch.no_grad()
    def forecast(self, history):
        """history [C, L >= seq_len] -> [C, pred_len]; the last seq_len steps, one channel at a
        time (channel independence, batch 1)."""
        w = self.window(history)
        return torch.stack([self.forward_channel(w[c])["forecast"] for c in range(w.shape[0])])

    @torch.no_grad()
    def forecast_batched_upstream(self, history):
        """The channels of `history` as ONE upstream batch: prompts tokenized together
        (padding=True with the tokenizer's padding side and the EOS pad token) and the LLM run
        with no attention mask, as upstream's forward does. Differs from `forecast` when the
        prompts have different token counts. For comparison only."""
        w = self.window(history)
        x_norm, mean, std = ref.revin(w.T.unsqueeze(0))                     # (1, L, C)
        texts = ref.prompt(self.description, self.pred_len, self.seq_len, x_norm)
        ids = self.tokenize(texts)                                          # [C, T_max]
        prompt_emb = self.llm_model.get_input_embeddings()(ids)
        rows = x_norm[0].T                                                  # [C, L]
        patch_emb, _ = self.patch_embedding(rows)
        protos = self.prototypes()
        reprog = torch.stack([self.reprogramming_layer(patch_emb[c], protos, protos)
                              for c in range(rows.shape[0])])
        hidden = self.run_llm(torch.cat([prompt_emb, reprog], dim=1))
        y = self.head(hidden)                                               # [C, pred_len]
        return y * std[0].T + mean[0].T, ids

    # -- checkpoint -----------------------------------------------------------------------------

    def export(self, folder):
        """Writes folder/checkpoint.pt (torch.save of the upstream state dict; archive prefix
        'checkpoint/') and folder/timellm.json."""
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            path = os.path.join(tmp, CHECKPOINT_FILE)  # same file name, same archive prefix
            torch.save(self.state_dict(), path)
            os.replace(path, os.path.join(folder, CHECKPOINT_FILE))
        write_json(os.path.join(folder, SIDECAR_FILE), self.sidecar())

    @classmethod
    def load(cls, folder, base, tokenizer=None):
        """Rebuilds a model from an exported folder and the HF folder of its base LLM (for the
        config and the tokenizer; the LLM weights come from the checkpoint's llm_model.*)."""
        with open(os.path.join(folder, SIDECAR_FILE)) as f:
            side = json.load(f)
        missing = [k for k in SIDECAR_KEYS if k not in side]
        if missing:
            raise ValueError(f"{SIDECAR_FILE} lacks {missing}")
        llm = load_llm(base, side["llm_layers"], weights=False)
        tok = tokenizer if tokenizer is not None else load_tokenizer(base)
        model = cls(llm, tok, side["seq_len"], side["pred_len"], side["patch_len"], side["stride"],
                    side["d_model"], side["d_ff"], side["n_heads"], side["num_tokens"],
                    side["description"])
        state = torch.load(os.path.join(folder, CHECKPOINT_FILE), map_location="cpu",
                           weights_only=True)
        model.load_state_dict(state, strict=True)
        model.eval()
        return model


# -- backbone loading ------------------------------------------------------------------------------

def truncated_config(base, llm_layers):
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(base)
    config.num_hidden_layers = llm_layers  # GPT-2: maps to n_layer
    return config


def bare_model_class(model_type):
    from transformers import GPT2Model, LlamaModel
    classes = {"llama": LlamaModel, "gpt2": GPT2Model}
    if model_type not in classes:
        raise ValueError(f"unsupported backbone model_type {model_type!r} (llama, gpt2)")
    return classes[model_type]


def load_llm(base, llm_layers, weights=True):
    """The bare backbone (no LM head) with only its first llm_layers blocks, float32, eager
    attention: built like upstream, from the base's config with the layer count replaced, then
    (weights=True) loaded with from_pretrained, which skips the blocks beyond llm_layers and
    strips the CausalLM prefix ('model.' / 'transformer.')."""
    config = truncated_config(base, llm_layers)
    cls = bare_model_class(config.model_type)
    if weights:
        model = cls.from_pretrained(base, config=config, torch_dtype=torch.float32,
                                    attn_implementation="eager")
    else:
        config._attn_implementation = "eager"
        model = cls(config)
    return model.eval()


def load_tokenizer(base):
    """The slow tokenizer class upstream uses (LlamaTokenizer from tokenizer.model for Llama,
    GPT2Tokenizer for GPT-2), falling back to AutoTokenizer."""
    from transformers import AutoConfig, AutoTokenizer, GPT2Tokenizer, LlamaTokenizer
    model_type = AutoConfig.from_pretrained(base).model_type
    if model_type == "llama" and os.path.exists(os.path.join(base, "tokenizer.model")):
        return LlamaTokenizer.from_pretrained(base)
    if model_type == "gpt2" and os.path.exists(os.path.join(base, "vocab.json")):
        return GPT2Tokenizer.from_pretrained(base)
    return AutoTokenizer.from_pretrained(base)


def write_json(path, obj, indent=1):
    tmp = path + ".tmp-w"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)

/*
 * tslm.h — the C interface of tslm, an embeddable runtime for time-series language models.
 *
 * This header is the source of truth: the library implements it with Swift's
 * `@c @implementation`, so a definition that drifts from a declaration here does not compile.
 *
 * Conventions
 *   - Every function that can fail returns an int32_t status: TSLM_OK (0) or a negative
 *     TSLM_ERR_* code. After a failure, tslm_last_error() returns a message on the calling thread
 *     that names the file, tensor or argument at fault.
 *   - Every object the library returns has a matching *_free. Handles are opaque.
 *   - Strings are NUL-terminated UTF-8. Functions that fill caller buffers take (buf, buf_size,
 *     &out_len): out_len receives the length the full result needs (bytes without the NUL, or
 *     elements); when buf_size is too small the call returns TSLM_ERR_BUFFER_TOO_SMALL and writes
 *     nothing, so a caller can ask with buf_size 0 first, then allocate.
 *   - Parameters come as by-value structs from *_default_params(); change the fields you need.
 *   - Series values are float (binary32), channel-major: values[c * length + t].
 *   - Only fixed-width types cross this boundary; no library call exits, traps or prints.
 *
 * Build an application:  cc app.c $(pkg-config --cflags --libs tslm)
 */
#ifndef TSLM_H
#define TSLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  define TSLM_API __declspec(dllexport)
#else
#  define TSLM_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Versions, status codes, errors, logging                                                      */
/* Thread safety: all functions in this section may be called from any thread at any time.    */
/* ------------------------------------------------------------------------------------------ */

/** The ABI version this header describes; tslm_abi_version() returns the library's. */
#define TSLM_ABI_VERSION 3

#define TSLM_OK                      0
#define TSLM_ERR_IO                 -1  /* a file could not be opened, read or written */
#define TSLM_ERR_FORMAT             -2  /* a file is malformed, truncated or fails a checksum */
#define TSLM_ERR_INVALID_ARGUMENT   -3  /* NULL, freed or foreign handle; bad length; NaN/Inf; ... */
#define TSLM_ERR_UNSUPPORTED        -4  /* an architecture, dtype or feature this build lacks */
#define TSLM_ERR_WRONG_KIND         -5  /* the model's kind cannot do this (e.g. forecast on text) */
#define TSLM_ERR_CONTEXT_FULL       -6  /* the prompt or generation does not fit the context */
#define TSLM_ERR_BUFFER_TOO_SMALL   -7  /* out_len says how much is needed */
#define TSLM_ERR_CANCELLED          -8  /* a callback returned false */
#define TSLM_ERR_INTERNAL           -9  /* a bug: please report it with tslm_last_error() */
#define TSLM_ERR_NO_ANSWER         -10  /* no sampled answer names a choice (tslm_model_analyze) */
#define TSLM_ERR_ABORTED           -11  /* an abort callback (or a load progress callback) stopped the call */

/** The library version, e.g. "0.1.0". Static storage. */
TSLM_API const char *tslm_version(void);

/** The library's ABI version; compare with TSLM_ABI_VERSION. */
TSLM_API uint32_t tslm_abi_version(void);

/** A short constant name for a status code ("TSLM_ERR_IO", ...). Static storage. */
TSLM_API const char *tslm_status_name(int32_t status);

/**
 * The message of the last failed call on this thread ("" if none). Valid until the next call
 * into the library on this thread.
 */
TSLM_API const char *tslm_last_error(void);

#define TSLM_LOG_ERROR 0
#define TSLM_LOG_WARN  1
#define TSLM_LOG_INFO  2

/** Receives log lines (level, NUL-terminated message, user_data). May be called from any thread. */
typedef void (*tslm_log_callback)(int32_t level, const char *message, void *user_data);

/**
 * Sets the process-wide log callback (NULL = no logging, the default: the library never prints).
 * Set it before loading models; it is read without a lock by worker threads.
 */
TSLM_API void tslm_set_log_callback(tslm_log_callback callback, void *user_data);

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                       */
/* Thread safety: a loaded model is immutable. Any number of threads may use one model at once */
/* (through their own sessions); tslm_model_free must not race with any other use of it.       */
/* ------------------------------------------------------------------------------------------ */

typedef struct tslm_model tslm_model;

/** What a model does. */
#define TSLM_KIND_TEXT       0  /* text in, text out */
#define TSLM_KIND_CLASSIFIER 1  /* series + text in, rationale and answer out (OpenTSLM) */
#define TSLM_KIND_FORECASTER 2  /* series history in, forecast out (ChatTime, Time-LLM, LSTM) */

typedef struct tslm_model_params {
    int32_t n_threads;        /* worker threads for sessions of this model; 0 = all cores */
    bool    use_mmap;         /* true: map the file (zero-copy); false: read it into memory */
    bool    verify_checksums; /* true: check every tensor's xxHash64 while loading (slower) */
    int32_t context_length;   /* default context of new sessions, in tokens; 0 = min(model, 4096) */
} tslm_model_params;

/** Defaults: n_threads 0, use_mmap true, verify_checksums false, context_length 0. */
TSLM_API tslm_model_params tslm_model_default_params(void);

/**
 * Opens, validates and maps a .tslm file and builds its model and tokenizer.
 * On success *out_model receives a handle to free with tslm_model_free; on failure it is NULL.
 * Errors: TSLM_ERR_IO (missing/unreadable), TSLM_ERR_FORMAT (corrupt), TSLM_ERR_UNSUPPORTED
 * (unknown architecture), TSLM_ERR_INVALID_ARGUMENT.
 */
TSLM_API int32_t tslm_model_load(const char *path, tslm_model_params params, tslm_model **out_model);

/**
 * Progress of a load (tslm_model_load_with_progress): steps done so far and their total, called
 * on the loading thread. The steps: each tensor the model reads while it is built (decompressed
 * when stored with zstd), then, with params.verify_checksums, each tensor's checksum. Returning
 * false stops the load: TSLM_ERR_ABORTED, *out_model NULL, nothing stays allocated.
 */
typedef bool (*tslm_load_progress_callback)(int64_t done, int64_t total, void *user_data);

/** tslm_model_load, calling progress (may be NULL) as it goes; see tslm_load_progress_callback. */
TSLM_API int32_t tslm_model_load_with_progress(const char *path, tslm_model_params params,
                                               tslm_load_progress_callback progress, void *user_data,
                                               tslm_model **out_model);

/**
 * Frees a model. Sessions of the model must be freed first (TSLM_ERR_INVALID_ARGUMENT if any is
 * alive; the model is then not freed). NULL is a no-op returning TSLM_OK; a handle that is not a
 * live model (already freed, or never one) returns TSLM_ERR_INVALID_ARGUMENT.
 */
TSLM_API int32_t tslm_model_free(tslm_model *model);

/** TSLM_KIND_* of the model, or a negative status. */
TSLM_API int32_t tslm_model_kind(const tslm_model *model);

/** general.architecture ("llama", "gemma3", ...); owned by the model. NULL on a bad handle. */
TSLM_API const char *tslm_model_architecture(const tslm_model *model);

/** The model's maximum context length in tokens, or a negative status. */
TSLM_API int32_t tslm_model_context_length(const tslm_model *model);

/** The vocabulary size, or a negative status. */
TSLM_API int32_t tslm_model_vocab_size(const tslm_model *model);

/**
 * A metadata value rendered as text (numbers in decimal, booleans as true/false, arrays as
 * "[type] x count"), copied into buf. TSLM_ERR_INVALID_ARGUMENT if the key does not exist.
 */
TSLM_API int32_t tslm_model_meta(const tslm_model *model, const char *key,
                                 char *buf, size_t buf_size, size_t *out_len);

/* ------------------------------------------------------------------------------------------ */
/* Tokens and chat templates                                                                    */
/* Thread safety: safe on a shared model from any number of threads.                           */
/* ------------------------------------------------------------------------------------------ */

/**
 * Tokenizes text into tokens[0 .. max_tokens). add_special: prepend BOS if the model does;
 * parse_special: text like "<|im_end|>" becomes its special token. *out_count receives the
 * number of tokens the text needs.
 */
TSLM_API int32_t tslm_tokenize(const tslm_model *model, const char *text, bool add_special,
                               bool parse_special, int32_t *tokens, size_t max_tokens,
                               size_t *out_count);

/**
 * tslm_tokenize for text of text_len bytes that need not be NUL-terminated and may contain NUL
 * bytes (which are tokenized like any other byte). text may be NULL when text_len is 0.
 */
TSLM_API int32_t tslm_tokenize_n(const tslm_model *model, const char *text, size_t text_len,
                                 bool add_special, bool parse_special, int32_t *tokens,
                                 size_t max_tokens, size_t *out_count);

/** Turns tokens back into UTF-8 text; skip_special drops control tokens. */
TSLM_API int32_t tslm_detokenize(const tslm_model *model, const int32_t *tokens, size_t n_tokens,
                                 bool skip_special, char *buf, size_t buf_size, size_t *out_len);

typedef struct tslm_chat_message {
    const char *role;     /* "system", "user" or "assistant" */
    const char *content;
} tslm_chat_message;

/**
 * Renders messages with the model's chat template (ChatML, Llama-3, Gemma or Alpaca, chosen from
 * its tokenizer.chat_template) followed by the prefix that starts the assistant's reply.
 * TSLM_ERR_UNSUPPORTED if the model has no template this library knows.
 */
TSLM_API int32_t tslm_chat_apply_template(const tslm_model *model, const tslm_chat_message *messages,
                                          size_t n_messages, char *buf, size_t buf_size,
                                          size_t *out_len);

/* ------------------------------------------------------------------------------------------ */
/* Sessions: a prompt made of text and series, then generation                                  */
/* Thread safety: a session is used by one thread at a time. Sessions of one model on          */
/* different threads run concurrently and give the same results as run one after another.     */
/* ------------------------------------------------------------------------------------------ */

typedef struct tslm_session tslm_session;

/* How a session stores keys and values (tslm_session_params.kv_type). */
#define TSLM_KV_AUTO 0  /* f16 where the model's weight matrices are quantized, f32 where they are floats */
#define TSLM_KV_F32  1
#define TSLM_KV_F16  2  /* half the memory; faster to read over long contexts */

typedef struct tslm_session_params {
    int32_t context_length;   /* tokens (positions) the session holds; 0 = the model's default */
    int32_t kv_type;          /* TSLM_KV_AUTO (0), TSLM_KV_F32 or TSLM_KV_F16 */
} tslm_session_params;

/** Defaults: context_length 0, kv_type TSLM_KV_AUTO. */
TSLM_API tslm_session_params tslm_session_default_params(void);

/** Creates a session (its KV cache) on a model. Free it with tslm_session_free. */
TSLM_API int32_t tslm_session_new(tslm_model *model, tslm_session_params params,
                                  tslm_session **out_session);

/** Frees a session. NULL is a no-op; a handle that is not a live session is an error. */
TSLM_API int32_t tslm_session_free(tslm_session *session);

/** Forgets everything appended or generated so far. */
TSLM_API int32_t tslm_session_reset(tslm_session *session);

/** Number of positions used in the session's context. Negative status on a bad handle. */
TSLM_API int32_t tslm_session_position(const tslm_session *session);

/**
 * Progress of a session's prompt runs (tslm_session_append_text, and the prompt that
 * tslm_session_generate runs for a time-series model): called after every batch with the
 * positions run so far and the prompt's total. Called on the thread running the session.
 */
typedef void (*tslm_progress_callback)(int64_t done, int64_t total, void *user_data);

/**
 * Polled on the thread running the session before every batch of a prompt run (at most 16
 * positions apart while one is set) and before every generated token: returning true stops the
 * call. A prompt run stopped this way returns TSLM_ERR_ABORTED and none of its positions enter
 * the context (a time-series prompt stays queued: the next tslm_session_generate runs it again);
 * a generation stops with TSLM_ERR_ABORTED and stop reason TSLM_STOP_ABORTED, its text so far
 * in tslm_session_last_text. The session stays usable. To stop from another thread, let the
 * callback read a flag that thread sets (an atomic).
 */
typedef bool (*tslm_abort_callback)(void *user_data);

/** Sets (or, with NULL, clears) the session's progress callback. */
TSLM_API int32_t tslm_session_set_progress_callback(tslm_session *session, tslm_progress_callback callback,
                                                    void *user_data);

/** Sets (or, with NULL, clears) the session's abort callback. */
TSLM_API int32_t tslm_session_set_abort_callback(tslm_session *session, tslm_abort_callback callback,
                                                 void *user_data);

/**
 * Appends text to the prompt and runs it through the model. add_special: prepend BOS when the
 * model's tokenizer adds one. Special-token text ("<|im_start|>") is parsed.
 * TSLM_ERR_CONTEXT_FULL if it does not fit (the session is then unchanged).
 */
TSLM_API int32_t tslm_session_append_text(tslm_session *session, const char *text, bool add_special);

/** tslm_session_append_text for text of text_len bytes (NUL bytes allowed, no terminator needed). */
TSLM_API int32_t tslm_session_append_text_n(tslm_session *session, const char *text, size_t text_len,
                                            bool add_special);

/**
 * Appends n_channels series of `length` samples each (values[c * length + t]), every channel
 * one series, described by `description`, a template in which the library replaces "{mean}" and
 * "{std}" by the channel's raw mean and std (4 decimals), and "{channel}", "{axis}" (x/y/z) and
 * "{lead}" (ECG lead) by the series' position among the series of the prompt. NULL: the model's
 * trained description (metadata opentslm.prompt.series), else the preset's. preset: a task's
 * normalization and default description ("har", "sleep", "ecg", "tsqa", "m4", "custom": values
 * as given), or NULL for the model's own (metadata opentslm.preset), else "custom". Values must be
 * finite. Text models return TSLM_ERR_WRONG_KIND (after the arguments are checked).
 * A time-series model's prompt is run at tslm_session_generate (all series of a prompt are
 * encoded together), so tslm_session_position does not count it before then.
 * To ask in the prompt the model was trained with, use tslm_session_append_recording.
 */
TSLM_API int32_t tslm_session_append_series(tslm_session *session, const float *values,
                                            int64_t length, int32_t n_channels,
                                            const char *description, const char *preset);

/**
 * Appends a recording in the prompt the model was trained with (stored in the model file by
 * `tslm convert --prompt`, metadata opentslm.prompt.*): the text before the series (`question`
 * replaces it when not NULL), then every channel as one series (values[c * length + t])
 * described by the model's template, then the text after the series; normalized with the
 * model's preset. channel_names: n_channels UTF-8 names (e.g. CSV column names such as
 * "accelerometer_x", which fill "{name}", "{sensor}" and "{axis}"), or NULL for the names the
 * model was trained with. On failure nothing is appended. Models other than time-series
 * classifiers return TSLM_ERR_WRONG_KIND (after the arguments are checked).
 */
TSLM_API int32_t tslm_session_append_recording(tslm_session *session, const float *values,
                                               int64_t length, int32_t n_channels,
                                               const char *const *channel_names,
                                               const char *question);

/** Returns false to stop generation (the call then returns TSLM_ERR_CANCELLED). */
typedef bool (*tslm_token_callback)(const char *piece, void *user_data);

typedef struct tslm_sampler_params {
    float    temperature;     /* 0 = greedy */
    int32_t  top_k;           /* 0 = off */
    float    top_p;           /* 1 = off */
    float    min_p;           /* 0 = off */
    float    repeat_penalty;  /* 1 = off */
    int32_t  repeat_window;   /* tokens looked back for the penalty */
    uint64_t seed;            /* equal seeds give equal text */
} tslm_sampler_params;

/** Defaults: greedy (temperature 0, top_k 0, top_p 1, min_p 0, penalty 1, window 64). */
TSLM_API tslm_sampler_params tslm_sampler_default_params(void);

typedef struct tslm_generate_params {
    int32_t             max_tokens;   /* tokens to generate at most */
    tslm_sampler_params sampler;
    const char *const  *stop;         /* n_stop stop strings (not included in the text), or NULL */
    int32_t             n_stop;
} tslm_generate_params;

/** Defaults: max_tokens 256, greedy, no stop strings (generation still stops at EOS). */
TSLM_API tslm_generate_params tslm_generate_default_params(void);

/**
 * Generates after everything appended, calling callback (may be NULL) with each piece of text
 * as it becomes final. The whole text, the answer and statistics are then available from the
 * tslm_session_last_* functions. The generated tokens stay in the context, so a conversation can
 * go on with tslm_session_append_text.
 */
TSLM_API int32_t tslm_session_generate(tslm_session *session, tslm_generate_params params,
                                       tslm_token_callback callback, void *user_data);

/** The text of the last generation. */
TSLM_API int32_t tslm_session_last_text(const tslm_session *session, char *buf, size_t buf_size,
                                        size_t *out_len);

/**
 * The answer of the last generation: the text after its last "Answer: ", without a final period,
 * trimmed; the whole text trimmed when there is no "Answer: ".
 */
TSLM_API int32_t tslm_session_last_answer(const tslm_session *session, char *buf, size_t buf_size,
                                          size_t *out_len);

/**
 * The token ids of the last generation (without the stop token) into tokens[0 .. max_tokens);
 * *out_count receives their number (TSLM_ERR_BUFFER_TOO_SMALL when max_tokens is less). No
 * generation yet: 0 ids.
 */
TSLM_API int32_t tslm_session_last_tokens(const tslm_session *session, int32_t *tokens,
                                          size_t max_tokens, size_t *out_count);

/**
 * The ids of every position in the session's context, in order (tslm_session_position of them):
 * the prompt as it became tokens (special tokens included), -1 at each position where a series
 * ran as an input embedding (an OpenTSLM SoftPrompt soft token), then generated tokens. A
 * time-series prompt counts once it ran (at tslm_session_generate). *out_count receives their
 * number (TSLM_ERR_BUFFER_TOO_SMALL when max_tokens is less).
 */
TSLM_API int32_t tslm_session_context_tokens(const tslm_session *session, int32_t *tokens,
                                             size_t max_tokens, size_t *out_count);

/**
 * The logits (vocab_size floats, before sampling) after the last position the session ran: the
 * distribution the next token is sampled from. Available after appended text runs and after a
 * generation that ended at EOS; TSLM_ERR_INVALID_ARGUMENT when the session has not run a position
 * since its last sampled token (the token runs when the conversation goes on) or holds a
 * time-series prompt not yet run (it runs at tslm_session_generate).
 */
TSLM_API int32_t tslm_session_logits(const tslm_session *session, float *logits, size_t max_logits,
                                     size_t *out_count);

#define TSLM_STOP_EOS       0  /* the model ended its text */
#define TSLM_STOP_STRING    1  /* a stop string appeared */
#define TSLM_STOP_LENGTH    2  /* max_tokens reached */
#define TSLM_STOP_CANCELLED 3  /* the callback returned false */
#define TSLM_STOP_CONTEXT   4  /* the context filled up */
#define TSLM_STOP_ABORTED   5  /* the session's abort callback stopped it */

typedef struct tslm_generation_stats {
    int32_t prompt_tokens;     /* positions run before generation started */
    int32_t generated_tokens;
    double  prompt_seconds;
    double  generate_seconds;
    int32_t stop_reason;       /* TSLM_STOP_* */
} tslm_generation_stats;

/** Statistics of the last generation. */
TSLM_API int32_t tslm_session_last_stats(const tslm_session *session, tslm_generation_stats *out_stats);

/* ------------------------------------------------------------------------------------------ */
/* Forecasting                                                                                  */
/* Thread safety: safe on a shared model from any number of threads.                           */
/* ------------------------------------------------------------------------------------------ */

typedef struct tslm_forecast_params {
    int32_t      horizon;          /* steps to forecast */
    const float *quantile_levels;  /* n_quantiles levels in (0, 1), or NULL */
    int32_t      n_quantiles;
    int32_t      n_samples;        /* sampled paths for sampling forecasters; 0 = the model's */
    uint64_t     seed;
    bool         greedy;           /* sampling forecasters: one deterministic (argmax) path */
    const char  *context;          /* ChatTime: context knowledge for the prompt, or NULL */
} tslm_forecast_params;

/** Defaults: horizon 16, no quantiles, n_samples 0, seed 0, not greedy, no context. */
TSLM_API tslm_forecast_params tslm_forecast_default_params(void);

/** What a forecasting model reads and writes. */
typedef struct tslm_forecast_info {
    int32_t input_channels;   /* channels a history must have; 0 = any (each forecast alone) */
    int32_t output_channels;  /* channels forecast; 0 = as many as the history has */
    int32_t window;           /* history steps read (the last ones); 0 = any length */
    int32_t max_horizon;      /* the most steps it forecasts; 0 = unlimited */
} tslm_forecast_info;

/** Fills *out_info for a forecasting model; other models return TSLM_ERR_WRONG_KIND. */
TSLM_API int32_t tslm_model_forecast_info(const tslm_model *model, tslm_forecast_info *out_info);

/**
 * Forecasts `horizon` steps after history[0 .. length) into out_point[0 .. horizon) and, when
 * quantiles are asked for, out_quantiles[q * horizon + t]. History values must be finite, except
 * that a ChatTime model takes NaN as a missing value (not all of them); a ChatTime forecast step
 * that no sampled path gave a value for is NaN. Sampling forecasters (ChatTime) draw n_samples
 * paths seeded by `seed` (the same seed, the same forecast) and give their per-step median and
 * quantiles; point forecasters refuse quantiles.
 * For a model with one input and one output channel (see tslm_forecast_channels otherwise).
 * A history shorter than the model's window, a horizon beyond its maximum, or quantiles from a
 * point forecaster are TSLM_ERR_INVALID_ARGUMENT. Models that do not forecast return
 * TSLM_ERR_WRONG_KIND (after the arguments are checked).
 */
TSLM_API int32_t tslm_forecast(tslm_model *model, const float *history, int64_t length,
                               tslm_forecast_params params, float *out_point, float *out_quantiles);

/**
 * Like tslm_forecast for n_channels channels of `length` steps (history[c * length + t]):
 * out_point[o * horizon + t] for each output channel o (tslm_forecast_info.output_channels, or
 * n_channels when that is 0), out_quantiles[(o * n_quantiles + q) * horizon + t].
 */
TSLM_API int32_t tslm_forecast_channels(tslm_model *model, const float *history, int64_t length,
                                        int32_t n_channels, tslm_forecast_params params,
                                        float *out_point, float *out_quantiles);

/* ------------------------------------------------------------------------------------------ */
/* Analysis (ChatTime: multiple-choice questions about a series)                               */
/* Thread safety: safe on a shared model from any number of threads.                           */
/* ------------------------------------------------------------------------------------------ */

typedef struct tslm_analyze_params {
    int32_t  n_samples;  /* sampled answers; 0 = the model's (ChatTime: 8) */
    uint64_t seed;       /* the same seed, the same answer */
    bool     greedy;     /* one deterministic (argmax) answer instead */
} tslm_analyze_params;

/** Defaults: the model's sample count, seed 0, sampled. */
TSLM_API tslm_analyze_params tslm_analyze_default_params(void);

/**
 * Answers a multiple-choice `question` (it should list the choices as (a), (b), (c)) about the
 * series values[0 .. length) (NaN = missing, not all), as ChatTime's official code does: each
 * sampled answer is cut at its first ".", its first "(a)", "(b)" or "(c)" is its vote, and the
 * majority (ties: the first seen) is written to buf, e.g. "(b)" (see the conventions for buf,
 * buf_size and out_len). When no answer names a choice: TSLM_ERR_NO_ANSWER. Models other than
 * ChatTime: TSLM_ERR_WRONG_KIND (after the arguments are checked).
 */
TSLM_API int32_t tslm_model_analyze(tslm_model *model, const float *values, int64_t length, const char *question,
                                    tslm_analyze_params params, char *buf, size_t buf_size, size_t *out_len);

#ifdef __cplusplus
}
#endif

#endif /* TSLM_H */

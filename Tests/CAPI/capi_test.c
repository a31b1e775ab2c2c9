/*
 * capi_test.c — the C API's contract, tested through libtslm.so as an application sees it.
 *
 *   capi_test MODEL.tslm WORKDIR [bad|threads|all]
 *
 * bad:     a table of bad calls, each of which must return its documented status with a
 *          non-empty message from tslm_last_error() and must not crash;
 * threads: two threads, each with its own session on one shared model, generate concurrently
 *          and must get exactly the text they get one after another.
 * MODEL must be a text model with a chat template (the converted SmolLM2). Exit status 0 when
 * every check passes; each check prints one line.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tslm.h>

static int passed, failed;

static void check_status(const char *what, int32_t got, int32_t want) {
    const char *msg = tslm_last_error();
    int ok = got == want && (want == TSLM_OK || (msg && msg[0] != '\0'));
    if (ok) passed++; else failed++;
    printf("%s %-64s %s%s%s\n", ok ? "ok  " : "FAIL", what, tslm_status_name(got),
           want != TSLM_OK ? " | " : "", want != TSLM_OK ? msg : "");
    if (!ok && got != want) printf("     expected %s\n", tslm_status_name(want));
}

static void check_true(const char *what, int cond) {
    if (cond) passed++; else failed++;
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
}

static bool stop_after_two(const char *piece, void *user) {
    (void)piece;
    int *calls = user;
    return ++*calls < 2;
}

static void bad_calls(const char *model_path, const char *workdir) {
    tslm_model_params mp = tslm_model_default_params();
    tslm_model *m = NULL, *m2 = NULL;
    char path[4096];

    /* --- loading --- */
    check_status("load: NULL path", tslm_model_load(NULL, mp, &m), TSLM_ERR_INVALID_ARGUMENT);
    check_true("load: failure leaves *out_model NULL", m == NULL);
    check_status("load: NULL out_model", tslm_model_load(model_path, mp, NULL), TSLM_ERR_INVALID_ARGUMENT);
    snprintf(path, sizeof path, "%s/does-not-exist.tslm", workdir);
    check_status("load: missing file", tslm_model_load(path, mp, &m), TSLM_ERR_IO);
    check_true("load: the message names the file", strstr(tslm_last_error(), "does-not-exist.tslm") != NULL);
    snprintf(path, sizeof path, "%s/garbage.tslm", workdir);
    FILE *f = fopen(path, "wb");
    if (f) { fputs("this is not a model file, just some text long enough to be read as a header.......", f); fclose(f); }
    check_status("load: corrupt file (bad magic)", tslm_model_load(path, mp, &m), TSLM_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/truncated.tslm", workdir);
    {   /* the first 100 kB of the real model */
        FILE *in = fopen(model_path, "rb"), *out = fopen(path, "wb");
        char buf[4096];
        for (int i = 0; in && out && i < 25; i++) {
            size_t n = fread(buf, 1, sizeof buf, in);
            fwrite(buf, 1, n, out);
        }
        if (in) fclose(in);
        if (out) fclose(out);
    }
    check_status("load: truncated file", tslm_model_load(path, mp, &m), TSLM_ERR_FORMAT);
    mp.n_threads = -1;
    check_status("load: negative n_threads", tslm_model_load(model_path, mp, &m), TSLM_ERR_INVALID_ARGUMENT);
    mp = tslm_model_default_params();
    mp.context_length = 1 << 30;
    check_status("load: context_length beyond the model's", tslm_model_load(model_path, mp, &m), TSLM_ERR_INVALID_ARGUMENT);
    mp = tslm_model_default_params();
    mp.context_length = 64;
    check_status("load: the real model", tslm_model_load(model_path, mp, &m), TSLM_OK);
    if (!m) return;

    /* --- model queries --- */
    check_status("kind: NULL model", tslm_model_kind(NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_true("kind: text model", tslm_model_kind(m) == TSLM_KIND_TEXT);
    check_true("architecture: NULL model gives NULL", tslm_model_architecture(NULL) == NULL);
    check_true("architecture: llama", strcmp(tslm_model_architecture(m), "llama") == 0);
    check_true("vocab size 49152", tslm_model_vocab_size(m) == 49152);
    check_true("context length 8192", tslm_model_context_length(m) == 8192);
    char small[4];
    size_t len = 0;
    check_status("meta: unknown key", tslm_model_meta(m, "no.such.key", small, sizeof small, &len), TSLM_ERR_INVALID_ARGUMENT);
    check_status("meta: NULL key", tslm_model_meta(m, NULL, small, sizeof small, &len), TSLM_ERR_INVALID_ARGUMENT);
    check_status("meta: buffer too small", tslm_model_meta(m, "general.architecture", small, sizeof small, &len), TSLM_ERR_BUFFER_TOO_SMALL);
    check_true("meta: out_len says 5 bytes for \"llama\"", len == 5);
    char arch[6];
    check_status("meta: exact-size buffer", tslm_model_meta(m, "general.architecture", arch, sizeof arch, &len), TSLM_OK);
    check_true("meta: value is llama", strcmp(arch, "llama") == 0);
    check_status("meta: NULL buf with a size", tslm_model_meta(m, "general.architecture", NULL, 64, &len), TSLM_ERR_INVALID_ARGUMENT);

    /* --- tokens --- */
    int32_t ids[64];
    size_t count = 0;
    check_status("tokenize: NULL text", tslm_tokenize(m, NULL, true, true, ids, 64, &count), TSLM_ERR_INVALID_ARGUMENT);
    check_status("tokenize: NULL model", tslm_tokenize(NULL, "hi", true, true, ids, 64, &count), TSLM_ERR_INVALID_ARGUMENT);
    check_status("tokenize: buffer too small", tslm_tokenize(m, "hello there, world", false, false, ids, 1, &count), TSLM_ERR_BUFFER_TOO_SMALL);
    check_true("tokenize: out_count says what is needed", count > 1);
    check_status("tokenize: invalid UTF-8", tslm_tokenize(m, "\xff\xfe", false, false, ids, 64, &count), TSLM_ERR_INVALID_ARGUMENT);
    check_status("tokenize: ok", tslm_tokenize(m, "hello there, world", false, false, ids, 64, &count), TSLM_OK);
    char text[128];
    check_status("detokenize: round trip", tslm_detokenize(m, ids, count, false, text, sizeof text, &len), TSLM_OK);
    check_true("detokenize: text comes back", strcmp(text, "hello there, world") == 0);
    int32_t bad_ids[2] = {5, 49152};
    check_status("detokenize: id out of range", tslm_detokenize(m, bad_ids, 2, false, text, sizeof text, &len), TSLM_ERR_INVALID_ARGUMENT);
    bad_ids[1] = -3;
    check_status("detokenize: negative id", tslm_detokenize(m, bad_ids, 2, false, text, sizeof text, &len), TSLM_ERR_INVALID_ARGUMENT);
    check_status("detokenize: NULL tokens with a count", tslm_detokenize(m, NULL, 3, false, text, sizeof text, &len), TSLM_ERR_INVALID_ARGUMENT);
    tslm_chat_message bad_role = {"robot", "hi"};
    check_status("chat template: unknown role", tslm_chat_apply_template(m, &bad_role, 1, text, sizeof text, &len), TSLM_ERR_INVALID_ARGUMENT);
    tslm_chat_message null_content = {"user", NULL};
    check_status("chat template: NULL content", tslm_chat_apply_template(m, &null_content, 1, text, sizeof text, &len), TSLM_ERR_INVALID_ARGUMENT);

    /* --- sessions --- */
    tslm_session *s = NULL, *tiny = NULL;
    tslm_session_params sp = tslm_session_default_params();
    check_status("session_new: NULL model", tslm_session_new(NULL, sp, &s), TSLM_ERR_INVALID_ARGUMENT);
    check_status("session_new: NULL out", tslm_session_new(m, sp, NULL), TSLM_ERR_INVALID_ARGUMENT);
    sp.context_length = -5;
    check_status("session_new: negative context", tslm_session_new(m, sp, &s), TSLM_ERR_INVALID_ARGUMENT);
    sp.context_length = 100000;
    check_status("session_new: context beyond the model's", tslm_session_new(m, sp, &s), TSLM_ERR_INVALID_ARGUMENT);
    sp = tslm_session_default_params();
    check_true("session params: kv_type defaults to TSLM_KV_AUTO", sp.kv_type == TSLM_KV_AUTO);
    sp.kv_type = 7;
    check_status("session_new: unknown kv_type", tslm_session_new(m, sp, &s), TSLM_ERR_INVALID_ARGUMENT);
    sp.kv_type = TSLM_KV_F16;
    check_status("session_new: f16 KV cache", tslm_session_new(m, sp, &s), TSLM_OK);
    tslm_session_free(s);
    s = NULL;
    sp = tslm_session_default_params();
    check_status("session_new: ok", tslm_session_new(m, sp, &s), TSLM_OK);
    sp.context_length = 8;
    check_status("session_new: 8-position session", tslm_session_new(m, sp, &tiny), TSLM_OK);
    if (!s || !tiny) return;

    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = 4;
    char one[1] = {'x'};
    check_status("last_text: before any generation", tslm_session_last_text(s, one, sizeof one, &len), TSLM_OK);
    check_true("last_text: empty, NUL-terminated", len == 0 && one[0] == '\0');
    check_status("last_answer: before any generation", tslm_session_last_answer(s, one, sizeof one, &len), TSLM_OK);
    check_status("last_text: buffer of size 0", tslm_session_last_text(s, NULL, 0, &len), TSLM_ERR_BUFFER_TOO_SMALL);
    check_status("generate: nothing appended yet", tslm_session_generate(s, gp, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_text: NULL session", tslm_session_append_text(NULL, "hi", true), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_text: NULL text", tslm_session_append_text(s, NULL, true), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_text: invalid UTF-8", tslm_session_append_text(s, "\xc3\x28", true), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_text: empty text", tslm_session_append_text(s, "", false), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_text: longer than the context",
                 tslm_session_append_text(tiny, "one two three four five six seven eight nine ten eleven", true), TSLM_ERR_CONTEXT_FULL);
    check_true("append_text: a failed append leaves the session empty", tslm_session_position(tiny) == 0);

    float series[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    check_status("append_series: NULL session", tslm_session_append_series(NULL, series, 3, 2, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_series: NULL values", tslm_session_append_series(s, NULL, 3, 2, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_series: zero length", tslm_session_append_series(s, series, 0, 2, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_series: negative length", tslm_session_append_series(s, series, -3, 2, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_series: zero channels", tslm_session_append_series(s, series, 3, 0, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_series: negative channel count", tslm_session_append_series(s, series, 3, -2, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_series: absurd size", tslm_session_append_series(s, series, (int64_t)1 << 40, 2, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    series[4] = NAN;
    check_status("append_series: NaN", tslm_session_append_series(s, series, 3, 2, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    series[4] = INFINITY;
    check_status("append_series: Inf", tslm_session_append_series(s, series, 3, 2, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    series[4] = 0.5f;
    check_status("append_series: unknown preset", tslm_session_append_series(s, series, 3, 2, NULL, "weather"), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_series: invalid UTF-8 description", tslm_session_append_series(s, series, 3, 2, "\xff", NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_series: valid series on a text model", tslm_session_append_series(s, series, 3, 2, NULL, "har"), TSLM_ERR_WRONG_KIND);
    {
        const char *names[2] = {"accelerometer_x", "accelerometer_y"};
        const char *bad_names[2] = {"accelerometer_x", NULL};
        const char *bad_utf8[2] = {"accelerometer_x", "\xff"};
        check_status("append_recording: NULL session", tslm_session_append_recording(NULL, series, 3, 2, names, NULL), TSLM_ERR_INVALID_ARGUMENT);
        check_status("append_recording: NULL values", tslm_session_append_recording(s, NULL, 3, 2, names, NULL), TSLM_ERR_INVALID_ARGUMENT);
        check_status("append_recording: zero length", tslm_session_append_recording(s, series, 0, 2, names, NULL), TSLM_ERR_INVALID_ARGUMENT);
        check_status("append_recording: zero channels", tslm_session_append_recording(s, series, 3, 0, names, NULL), TSLM_ERR_INVALID_ARGUMENT);
        check_status("append_recording: absurd size", tslm_session_append_recording(s, series, (int64_t)1 << 40, 2, names, NULL), TSLM_ERR_INVALID_ARGUMENT);
        check_status("append_recording: a NULL channel name", tslm_session_append_recording(s, series, 3, 2, bad_names, NULL), TSLM_ERR_INVALID_ARGUMENT);
        check_status("append_recording: invalid UTF-8 channel name", tslm_session_append_recording(s, series, 3, 2, bad_utf8, NULL), TSLM_ERR_INVALID_ARGUMENT);
        check_status("append_recording: invalid UTF-8 question", tslm_session_append_recording(s, series, 3, 2, names, "\xff"), TSLM_ERR_INVALID_ARGUMENT);
        series[1] = NAN;
        check_status("append_recording: NaN", tslm_session_append_recording(s, series, 3, 2, names, NULL), TSLM_ERR_INVALID_ARGUMENT);
        series[1] = 0.2f;
        check_status("append_recording: valid recording on a text model", tslm_session_append_recording(s, series, 3, 2, names, "Which activity?"), TSLM_ERR_WRONG_KIND);
    }

    check_status("append_text: ok", tslm_session_append_text(s, "The capital of France is", true), TSLM_OK);
    gp.max_tokens = -1;
    check_status("generate: negative max_tokens", tslm_session_generate(s, gp, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    gp = tslm_generate_default_params();
    gp.n_stop = 2;
    check_status("generate: n_stop without stop strings", tslm_session_generate(s, gp, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    const char *stops[2] = {"\n", NULL};
    gp.stop = stops;
    check_status("generate: a NULL stop string", tslm_session_generate(s, gp, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    gp = tslm_generate_default_params();
    gp.sampler.top_p = 2.0f;
    check_status("generate: top_p 2", tslm_session_generate(s, gp, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    gp.sampler = tslm_sampler_default_params();
    gp.sampler.temperature = NAN;
    check_status("generate: NaN temperature", tslm_session_generate(s, gp, NULL, NULL), TSLM_ERR_INVALID_ARGUMENT);
    gp = tslm_generate_default_params();
    gp.max_tokens = 16;
    int calls = 0;
    check_status("generate: the callback cancels", tslm_session_generate(s, gp, stop_after_two, &calls), TSLM_ERR_CANCELLED);
    tslm_generation_stats stats;
    check_status("last_stats: after a cancel", tslm_session_last_stats(s, &stats), TSLM_OK);
    check_true("last_stats: stop reason is cancelled", stats.stop_reason == TSLM_STOP_CANCELLED && stats.generated_tokens >= 2);
    check_status("last_stats: NULL out", tslm_session_last_stats(s, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("last_text: buffer too small", tslm_session_last_text(s, small, 1, &len), TSLM_ERR_BUFFER_TOO_SMALL);
    check_true("last_text: the partial text is kept", len > 0);
    check_status("reset: ok", tslm_session_reset(s), TSLM_OK);
    check_true("reset: position 0", tslm_session_position(s) == 0);
    check_status("position: NULL session", tslm_session_position(NULL), TSLM_ERR_INVALID_ARGUMENT);

    /* --- forecasting --- */
    tslm_forecast_params fp = tslm_forecast_default_params();
    float history[8] = {1, 2, 3, 4, 5, 6, 7, 8}, point[16], quant[32];
    check_status("forecast: text model", tslm_forecast(m, history, 8, fp, point, NULL), TSLM_ERR_WRONG_KIND);
    check_status("forecast: NULL model", tslm_forecast(NULL, history, 8, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("forecast: NULL history", tslm_forecast(m, NULL, 8, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("forecast: zero length", tslm_forecast(m, history, 0, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    history[3] = NAN;
    check_status("forecast: NaN in history", tslm_forecast(m, history, 8, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    history[3] = 4;
    fp.horizon = 0;
    check_status("forecast: zero horizon", tslm_forecast(m, history, 8, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    fp = tslm_forecast_default_params();
    float levels[2] = {0.1f, 1.5f};
    fp.quantile_levels = levels;
    fp.n_quantiles = 2;
    check_status("forecast: quantile level 1.5", tslm_forecast(m, history, 8, fp, point, quant), TSLM_ERR_INVALID_ARGUMENT);
    levels[1] = 0.9f;
    check_status("forecast: NULL out_quantiles", tslm_forecast(m, history, 8, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("forecast: NULL out_point", tslm_forecast(m, history, 8, fp, NULL, quant), TSLM_ERR_INVALID_ARGUMENT);

    /* --- freeing --- */
    check_status("model_free: refused while sessions live", tslm_model_free(m), TSLM_ERR_INVALID_ARGUMENT);
    check_true("model_free: the model still works after the refusal", tslm_model_vocab_size(m) == 49152);
    check_status("session_free: ok", tslm_session_free(s), TSLM_OK);
    check_status("session_free: twice", tslm_session_free(s), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_text: freed session", tslm_session_append_text(s, "hi", true), TSLM_ERR_INVALID_ARGUMENT);
    check_status("session_free: the 8-position session", tslm_session_free(tiny), TSLM_OK);
    check_status("session_free: NULL", tslm_session_free(NULL), TSLM_OK);
    check_status("session_free: a model handle", tslm_session_free((tslm_session *)m), TSLM_ERR_INVALID_ARGUMENT);
    check_status("model_free: ok", tslm_model_free(m), TSLM_OK);
    check_status("model_free: twice", tslm_model_free(m), TSLM_ERR_INVALID_ARGUMENT);
    check_status("kind: freed model", tslm_model_kind(m), TSLM_ERR_INVALID_ARGUMENT);
    check_status("model_free: NULL", tslm_model_free(NULL), TSLM_OK);
    (void)m2;
}

/* --- two threads, one model --- */

typedef struct job {
    tslm_model *model;
    const char *prompt;
    char text[4096];
    int32_t status;
} job;

/* Text with an explicit length (NUL bytes included), the logits of the last position and the
 * ids of the last generation. */
static void token_calls(const char *model_path) {
    tslm_model *m = NULL;
    tslm_session *s = NULL;
    check_status("tokens: load", tslm_model_load(model_path, tslm_model_default_params(), &m), TSLM_OK);
    if (!m) return;
    int32_t a[64], b[64];
    size_t na = 0, nb = 0;
    check_status("tokenize_n: ok", tslm_tokenize_n(m, "Paris is big", 12, false, false, a, 64, &na), TSLM_OK);
    check_status("tokenize: ok", tslm_tokenize(m, "Paris is big", false, false, b, 64, &nb), TSLM_OK);
    check_true("tokenize_n: same ids as tokenize", na == nb && na > 0 && memcmp(a, b, na * sizeof a[0]) == 0);
    check_status("tokenize_n: a prefix of the text", tslm_tokenize_n(m, "Paris is big", 5, false, false, b, 64, &nb), TSLM_OK);
    check_true("tokenize_n: only text_len bytes are read", nb >= 1 && nb < na);
    check_status("tokenize_n: text with a NUL byte", tslm_tokenize_n(m, "a\0b", 3, false, false, a, 64, &na), TSLM_OK);
    check_true("tokenize_n: the NUL byte is a token", na >= 2);
    check_status("tokenize_n: NULL text, length 3", tslm_tokenize_n(m, NULL, 3, false, false, a, 64, &na), TSLM_ERR_INVALID_ARGUMENT);
    check_status("tokenize_n: NULL text, length 0", tslm_tokenize_n(m, NULL, 0, false, false, a, 64, &na), TSLM_OK);
    check_status("tokenize_n: invalid UTF-8", tslm_tokenize_n(m, "\xc3\x28", 2, false, false, a, 64, &na), TSLM_ERR_INVALID_ARGUMENT);
    check_status("tokenize_n: buffer too small", tslm_tokenize_n(m, "Paris is big", 12, false, false, a, 1, &na), TSLM_ERR_BUFFER_TOO_SMALL);

    check_status("tokens: session", tslm_session_new(m, tslm_session_default_params(), &s), TSLM_OK);
    if (!s) { tslm_model_free(m); return; }
    float *logits = malloc(sizeof(float) * 49152);
    size_t nl = 0;
    check_status("logits: none before anything ran", tslm_session_logits(s, logits, 49152, &nl), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_text_n: text with a NUL byte", tslm_session_append_text_n(s, "The capital of France\0 is", 26, true), TSLM_OK);
    check_status("logits: after appended text", tslm_session_logits(s, logits, 49152, &nl), TSLM_OK);
    check_true("logits: vocab_size of them", nl == 49152);
    check_status("logits: buffer too small", tslm_session_logits(s, logits, 10, &nl), TSLM_ERR_BUFFER_TOO_SMALL);
    int best = 0;
    for (int i = 1; i < 49152; i++) if (logits[i] > logits[best]) best = i;
    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = 3;
    size_t nt = 0;
    check_status("last_tokens: none before a generation", tslm_session_last_tokens(s, a, 64, &nt), TSLM_OK);
    check_true("last_tokens: 0 ids before a generation", nt == 0);
    check_status("tokens: generate 3", tslm_session_generate(s, gp, NULL, NULL), TSLM_OK);
    check_status("last_tokens: ok", tslm_session_last_tokens(s, a, 64, &nt), TSLM_OK);
    check_true("last_tokens: at most 3 ids, the first the argmax of the logits (greedy)", nt <= 3 && (nt == 0 || a[0] == best));
    check_status("last_tokens: buffer too small", tslm_session_last_tokens(s, a, 0, &nt), TSLM_ERR_BUFFER_TOO_SMALL);
    check_status("last_tokens: NULL session", tslm_session_last_tokens(NULL, a, 64, &nt), TSLM_ERR_INVALID_ARGUMENT);
    /* The context: the prompt's ids (BOS-less tokenizer: as tokenize_n gives them), then the
     * generated ids except a last one not yet run. */
    int32_t ctx[128], prompt[64];
    size_t nc = 0, np = 0, ng = nt;
    check_status("tokenize_n: the prompt", tslm_tokenize_n(m, "The capital of France\0 is", 26, true, true, prompt, 64, &np), TSLM_OK);
    check_status("context_tokens: ok", tslm_session_context_tokens(s, ctx, 128, &nc), TSLM_OK);
    check_true("context_tokens: as many as the position", (int64_t)nc == tslm_session_position(s));
    check_true("context_tokens: the prompt's ids, then the generated ones",
               nc >= np && memcmp(ctx, prompt, np * sizeof prompt[0]) == 0 && (nc == np || memcmp(ctx + np, a, (nc - np) * sizeof a[0]) == 0) && nc - np <= ng);
    check_status("context_tokens: buffer too small", tslm_session_context_tokens(s, ctx, 1, &nc), TSLM_ERR_BUFFER_TOO_SMALL);
    check_status("context_tokens: NULL session", tslm_session_context_tokens(NULL, ctx, 128, &nc), TSLM_ERR_INVALID_ARGUMENT);
    check_status("logits: NULL session", tslm_session_logits(NULL, logits, 49152, &nl), TSLM_ERR_INVALID_ARGUMENT);
    check_status("append_text_n: NULL text, length 4", tslm_session_append_text_n(s, NULL, 4, true), TSLM_ERR_INVALID_ARGUMENT);
    free(logits);
    tslm_session_free(s);
    tslm_model_free(m);
}

/* A forecasting model (the one-layer univariate LSTM fixture: 1 input, 1 output, window 24,
 * horizon 6): its info, a valid forecast, and the calls it must refuse. */
static void forecaster_calls(const char *lstm_path, const char *text_path) {
    tslm_model *f = NULL, *t = NULL;
    check_status("lstm: load", tslm_model_load(lstm_path, tslm_model_default_params(), &f), TSLM_OK);
    check_status("lstm: load the text model", tslm_model_load(text_path, tslm_model_default_params(), &t), TSLM_OK);
    if (!f || !t) return;
    check_true("lstm: kind forecaster", tslm_model_kind(f) == TSLM_KIND_FORECASTER);
    tslm_forecast_info info = {0, 0, 0, 0};
    check_status("forecast_info: ok", tslm_model_forecast_info(f, &info), TSLM_OK);
    check_true("forecast_info: 1 input, 1 output, window 24, horizon 6",
               info.input_channels == 1 && info.output_channels == 1 && info.window == 24 && info.max_horizon == 6);
    check_status("forecast_info: NULL out_info", tslm_model_forecast_info(f, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("forecast_info: NULL model", tslm_model_forecast_info(NULL, &info), TSLM_ERR_INVALID_ARGUMENT);
    check_status("forecast_info: text model", tslm_model_forecast_info(t, &info), TSLM_ERR_WRONG_KIND);
    tslm_session *s = NULL;
    check_status("lstm: no text session", tslm_session_new(f, tslm_session_default_params(), &s), TSLM_ERR_WRONG_KIND);
    check_true("lstm: no context length", tslm_model_context_length(f) == TSLM_ERR_WRONG_KIND);
    check_true("lstm: no vocabulary", tslm_model_vocab_size(f) == TSLM_ERR_WRONG_KIND);

    float history[60], point[16], quant[32];
    for (int i = 0; i < 60; i++) history[i] = 40.0f + 5.0f * (float)((i * 7) % 12) / 11.0f;
    tslm_forecast_params fp = tslm_forecast_default_params();
    fp.horizon = 6;
    check_status("lstm forecast: ok", tslm_forecast(f, history, 30, fp, point, NULL), TSLM_OK);
    int finite = 1;
    for (int i = 0; i < 6; i++) finite &= isfinite(point[i]) != 0;
    check_true("lstm forecast: finite values", finite);
    float again[6];
    check_status("lstm forecast_channels: one channel", tslm_forecast_channels(f, history, 30, 1, fp, again, NULL), TSLM_OK);
    check_true("lstm forecast_channels: same as tslm_forecast", memcmp(point, again, sizeof again) == 0);
    check_status("lstm forecast: history shorter than the window", tslm_forecast(f, history, 23, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    fp.horizon = 7;
    check_status("lstm forecast: horizon beyond the model's", tslm_forecast(f, history, 30, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    fp.horizon = 6;
    check_status("lstm forecast_channels: two channels for a one-channel model", tslm_forecast_channels(f, history, 30, 2, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("lstm forecast_channels: zero channels", tslm_forecast_channels(f, history, 30, 0, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("lstm forecast_channels: absurd size", tslm_forecast_channels(f, history, (int64_t)1 << 40, 2, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    float levels[1] = {0.5f};
    fp.quantile_levels = levels;
    fp.n_quantiles = 1;
    check_status("lstm forecast: quantiles from a point forecaster", tslm_forecast(f, history, 30, fp, point, quant), TSLM_ERR_INVALID_ARGUMENT);
    fp = tslm_forecast_default_params();
    fp.horizon = 6;
    history[29] = INFINITY;
    check_status("lstm forecast: Inf in the history", tslm_forecast(f, history, 30, fp, point, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("lstm: free", tslm_model_free(f), TSLM_OK);
    check_status("text model: free", tslm_model_free(t), TSLM_OK);
}

/* A ChatTime model (the tiny fixture): forecasts with missing values, seeded sampling, greedy
 * and context, and multiple-choice analysis with its typed no-answer status. */
static void chattime_calls(const char *chattime_path, const char *lstm_path) {
    tslm_model *c = NULL, *f = NULL;
    check_status("chattime: load", tslm_model_load(chattime_path, tslm_model_default_params(), &c), TSLM_OK);
    check_status("chattime: load the lstm", tslm_model_load(lstm_path, tslm_model_default_params(), &f), TSLM_OK);
    if (!c || !f) return;
    check_true("chattime: kind forecaster", tslm_model_kind(c) == TSLM_KIND_FORECASTER);
    float history[12] = {10, 12.5f, 11, 14, 13.5f, 15, NAN, 16, 18, 21, 19.5f, 22};
    float a[5], b[5], q[10];
    tslm_forecast_params fp = tslm_forecast_default_params();
    fp.horizon = 5;
    fp.greedy = true;
    check_status("chattime greedy forecast (NaN = missing value)", tslm_forecast(c, history, 12, fp, a, NULL), TSLM_OK);
    check_status("chattime greedy forecast again", tslm_forecast(c, history, 12, fp, b, NULL), TSLM_OK);
    check_true("chattime greedy: deterministic", memcmp(a, b, sizeof a) == 0);
    fp.context = "Monthly sales; December peaks.";
    check_status("chattime greedy forecast with context", tslm_forecast(c, history, 12, fp, b, NULL), TSLM_OK);
    fp = tslm_forecast_default_params();
    fp.horizon = 5;
    fp.n_samples = 3;
    fp.seed = 11;
    float levels[2] = {0.1f, 0.9f};
    fp.quantile_levels = levels;
    fp.n_quantiles = 2;
    check_status("chattime sampled forecast with quantiles", tslm_forecast(c, history, 12, fp, a, q), TSLM_OK);
    check_status("chattime sampled forecast: quantiles asked, NULL out_quantiles", tslm_forecast(c, history, 12, fp, b, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("chattime sampled forecast, same seed", tslm_forecast(c, history, 12, fp, b, q), TSLM_OK);
    check_true("chattime sampled: the same seed gives the same forecast", memcmp(a, b, sizeof a) == 0);
    float all_nan[3] = {NAN, NAN, NAN};
    check_status("chattime forecast: all values missing", tslm_forecast(c, all_nan, 3, fp, a, q), TSLM_ERR_INVALID_ARGUMENT);
    history[0] = INFINITY;
    check_status("chattime forecast: Inf in the history", tslm_forecast(c, history, 12, fp, a, q), TSLM_ERR_INVALID_ARGUMENT);
    history[0] = 10;
    check_status("lstm forecast: NaN is not a missing value there", tslm_forecast(f, history, 12, tslm_forecast_default_params(), a, NULL), TSLM_ERR_INVALID_ARGUMENT);

    tslm_analyze_params ap = tslm_analyze_default_params();
    ap.n_samples = 3;
    ap.seed = 5;
    char answer[16];
    size_t len = 0;
    int32_t st = tslm_model_analyze(c, history, 12, "Is the trend (a) upward (b) downward (c) flat?", ap, answer, sizeof answer, &len);
    check_true("chattime analyze: a choice or TSLM_ERR_NO_ANSWER (the tiny random model)",
               (st == TSLM_OK && len == 3 && answer[0] == '(' && strchr("abc", answer[1]) && answer[2] == ')') ||
               (st == TSLM_ERR_NO_ANSWER && strstr(tslm_last_error(), "none of the 3 sampled answers") != NULL));
    check_status("chattime analyze: NULL question", tslm_model_analyze(c, history, 12, NULL, ap, answer, sizeof answer, &len), TSLM_ERR_INVALID_ARGUMENT);
    check_status("chattime analyze: NULL values", tslm_model_analyze(c, NULL, 12, "q", ap, answer, sizeof answer, &len), TSLM_ERR_INVALID_ARGUMENT);
    check_status("chattime analyze: all values missing", tslm_model_analyze(c, all_nan, 3, "q", ap, answer, sizeof answer, &len), TSLM_ERR_INVALID_ARGUMENT);
    ap.n_samples = -1;
    check_status("chattime analyze: negative samples", tslm_model_analyze(c, history, 12, "q", ap, answer, sizeof answer, &len), TSLM_ERR_INVALID_ARGUMENT);
    ap = tslm_analyze_default_params();
    check_status("analyze: an LSTM is the wrong kind", tslm_model_analyze(f, history, 12, "q", ap, answer, sizeof answer, &len), TSLM_ERR_WRONG_KIND);
    check_true("status name of TSLM_ERR_NO_ANSWER", strcmp(tslm_status_name(TSLM_ERR_NO_ANSWER), "TSLM_ERR_NO_ANSWER") == 0);
    check_status("chattime: free", tslm_model_free(c), TSLM_OK);
    check_status("lstm: free", tslm_model_free(f), TSLM_OK);
}

/* Progress and abort: a second thread raises a flag while a long prompt runs; the run stops
 * within one batch (16 positions) with TSLM_ERR_ABORTED, nothing of it stays in the context, and
 * the session then gives the same text as a fresh one. A generation stops likewise. */
typedef struct {
    atomic_bool flag;
    atomic_long polls;
    atomic_llong done;      /* positions run so far (progress callback) */
    atomic_llong total;
    long long done_at_flag;
    long abort_after_polls; /* > 0: abort on that poll instead of on the flag */
    struct timespec flagged;
} abort_state;

static bool abort_cb(void *user) {
    abort_state *a = user;
    long n = atomic_fetch_add(&a->polls, 1) + 1;
    return atomic_load(&a->flag) || (a->abort_after_polls > 0 && n >= a->abort_after_polls);
}

static void progress_cb(int64_t done, int64_t total, void *user) {
    abort_state *a = user;
    atomic_store(&a->done, done);
    atomic_store(&a->total, total);
}

static void *raise_flag_later(void *user) {
    abort_state *a = user;
    /* Wait until the run is well under way (64 positions, or 10 min at most: a debug build under
     * AddressSanitizer on a busy machine took 45 s for a batch of 16 positions). */
    struct timespec d = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 120000 && atomic_load(&a->done) < 64; i++) nanosleep(&d, NULL);
    a->done_at_flag = atomic_load(&a->done);
    clock_gettime(CLOCK_MONOTONIC, &a->flagged);
    atomic_store(&a->flag, true);
    return NULL;
}

static int generate_text(tslm_session *s, const char *prompt, char *out, size_t size) {
    size_t len = 0;
    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = 8;
    int32_t st = tslm_session_append_text(s, prompt, true);
    if (st == TSLM_OK) st = tslm_session_generate(s, gp, NULL, NULL);
    if (st == TSLM_OK) st = tslm_session_last_text(s, out, size, &len);
    return st;
}

/* --- load progress --- */

typedef struct load_watch {
    int64_t calls, last_done, total, stop_after;
    int monotonic;
} load_watch;

static bool watch_load(int64_t done, int64_t total, void *user) {
    load_watch *w = user;
    if (w->calls > 0 && (done < w->last_done || total != w->total)) w->monotonic = 0;
    if (done < 0 || done > total) w->monotonic = 0;
    w->calls++;
    w->last_done = done;
    w->total = total;
    return w->stop_after == 0 || w->calls < w->stop_after;
}

static void load_progress_calls(const char *model_path) {
    tslm_model *m = NULL;
    tslm_model_params mp = tslm_model_default_params();
    load_watch w = {0, 0, 0, 0, 1};
    check_status("load_with_progress: ok", tslm_model_load_with_progress(model_path, mp, watch_load, &w, &m), TSLM_OK);
    check_true("load_with_progress: called, done never decreases, ends at done == total > 0",
               w.calls > 1 && w.monotonic && w.total > 0 && w.last_done == w.total);
    int64_t tensors = w.total;
    tslm_model_free(m);
    m = NULL;
    mp.verify_checksums = true;
    load_watch v = {0, 0, 0, 0, 1};
    check_status("load_with_progress: with verify_checksums", tslm_model_load_with_progress(model_path, mp, watch_load, &v, &m), TSLM_OK);
    check_true("load_with_progress: verifying doubles the steps, ends at done == total",
               v.monotonic && v.total == 2 * tensors && v.last_done == v.total);
    tslm_model_free(m);
    m = NULL;
    for (int verify = 0; verify < 2; verify++) {
        mp.verify_checksums = verify;
        load_watch s = {0, 0, 0, verify ? tensors + 3 : 3, 1};
        char what[96];
        snprintf(what, sizeof what, "load_with_progress: callback returns false (%s)", verify ? "while verifying" : "while building");
        check_status(what, tslm_model_load_with_progress(model_path, mp, watch_load, &s, &m), TSLM_ERR_ABORTED);
        check_true("load_with_progress: stopped at that call, no model", m == NULL && s.calls == s.stop_after);
    }
    mp.verify_checksums = false;
    check_status("load_with_progress: NULL callback loads", tslm_model_load_with_progress(model_path, mp, NULL, NULL, &m), TSLM_OK);
    tslm_model_free(m);
    m = NULL;
    check_status("load_with_progress: NULL out_model", tslm_model_load_with_progress(model_path, mp, watch_load, &w, NULL), TSLM_ERR_INVALID_ARGUMENT);
    check_status("load_with_progress: missing file", tslm_model_load_with_progress("/nonexistent.tslm", mp, watch_load, &w, &m), TSLM_ERR_IO);
}

static void abort_calls(const char *model_path) {
    tslm_model *m = NULL;
    check_status("abort: load", tslm_model_load(model_path, tslm_model_default_params(), &m), TSLM_OK);
    if (!m) return;
    tslm_session *s = NULL, *fresh = NULL;
    check_status("abort: session", tslm_session_new(m, tslm_session_default_params(), &s), TSLM_OK);
    abort_state a = {0};
    check_status("abort: set the progress callback", tslm_session_set_progress_callback(s, progress_cb, &a), TSLM_OK);
    check_status("abort: set the abort callback", tslm_session_set_abort_callback(s, abort_cb, &a), TSLM_OK);
    check_status("abort: NULL session", tslm_session_set_abort_callback(NULL, abort_cb, &a), TSLM_ERR_INVALID_ARGUMENT);
    const char *sentence = "The quick brown fox jumps over the lazy dog while the sensor logs its acceleration. ";
    size_t n = strlen(sentence), reps = 120;
    char *text = malloc(n * reps + 1);
    for (size_t i = 0; i < reps; i++) memcpy(text + i * n, sentence, n);
    text[n * reps] = '\0';
    pthread_t t;
    pthread_create(&t, NULL, raise_flag_later, &a);
    int32_t st = tslm_session_append_text(s, text, true);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    pthread_join(t, NULL);
    long long after = atomic_load(&a.done) - a.done_at_flag;
    double ms = (end.tv_sec - a.flagged.tv_sec) * 1e3 + (end.tv_nsec - a.flagged.tv_nsec) / 1e6;
    printf("     abort: %lld of %lld prompt positions run, %lld after the flag, stopped %.1f ms after it\n",
           (long long)atomic_load(&a.done), (long long)atomic_load(&a.total), after, ms);
    check_status("abort: a long prompt run stopped from another thread", st, TSLM_ERR_ABORTED);
    check_true("abort: progress was reported before the flag", a.done_at_flag >= 64 && atomic_load(&a.total) > 1000);
    check_true("abort: at most one batch (16 positions) ran after the flag", after >= 0 && after <= 16);
    check_true("abort: nothing of the aborted prompt is in the context", tslm_session_position(s) == 0);
    free(text);

    /* The session is usable: the same text as a fresh session. */
    atomic_store(&a.flag, false);
    char again[512] = "", want[512] = "";
    check_status("abort: the session generates after an abort", generate_text(s, "Name a color:", again, sizeof again), TSLM_OK);
    check_status("abort: fresh session", tslm_session_new(m, tslm_session_default_params(), &fresh), TSLM_OK);
    check_status("abort: fresh session generates", generate_text(fresh, "Name a color:", want, sizeof want), TSLM_OK);
    check_true("abort: same text as a fresh session", strcmp(again, want) == 0 && strlen(want) > 0);

    /* A generation stopped by the abort callback. */
    check_status("abort: reset", tslm_session_reset(s), TSLM_OK);
    check_status("abort: prompt", tslm_session_append_text(s, "Name a color:", true), TSLM_OK);
    atomic_store(&a.polls, 0);
    a.abort_after_polls = 3;
    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = 20;
    check_status("abort: a generation stopped by the callback", tslm_session_generate(s, gp, NULL, NULL), TSLM_ERR_ABORTED);
    tslm_generation_stats stats;
    check_status("abort: stats", tslm_session_last_stats(s, &stats), TSLM_OK);
    check_true("abort: stop reason TSLM_STOP_ABORTED, before max_tokens",
               stats.stop_reason == TSLM_STOP_ABORTED && stats.generated_tokens >= 1 && stats.generated_tokens < 20);
    check_status("abort: clear the callback", tslm_session_set_abort_callback(s, NULL, NULL), TSLM_OK);
    check_status("abort: generation goes on without it", tslm_session_generate(s, gp, NULL, NULL), TSLM_OK);
    check_true("status name of TSLM_ERR_ABORTED", strcmp(tslm_status_name(TSLM_ERR_ABORTED), "TSLM_ERR_ABORTED") == 0);
    tslm_session_free(fresh);
    tslm_session_free(s);
    tslm_model_free(m);
}

static void *run_job(void *arg) {
    job *j = arg;
    tslm_session *s = NULL;
    j->text[0] = '\0';
    j->status = tslm_session_new(j->model, tslm_session_default_params(), &s);
    if (j->status == TSLM_OK) j->status = tslm_session_append_text(s, j->prompt, true);
    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = 24;
    if (j->status == TSLM_OK) j->status = tslm_session_generate(s, gp, NULL, NULL);
    size_t len = 0;
    if (j->status == TSLM_OK) j->status = tslm_session_last_text(s, j->text, sizeof j->text, &len);
    tslm_session_free(s);
    return NULL;
}

static void threads(const char *model_path) {
    tslm_model *m = NULL;
    tslm_model_params mp = tslm_model_default_params();
    mp.n_threads = 2;
    check_status("threads: load", tslm_model_load(model_path, mp, &m), TSLM_OK);
    if (!m) return;
    job seq[2] = {{m, "<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n", "", 0},
                  {m, "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n", "", 0}};
    job par[2] = {seq[0], seq[1]};
    for (int round = 0; round < 2; round++) {
        run_job(&seq[0]);
        run_job(&seq[1]);
        pthread_t t[2];
        pthread_create(&t[0], NULL, run_job, &par[0]);
        pthread_create(&t[1], NULL, run_job, &par[1]);
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
        for (int i = 0; i < 2; i++) {
            char what[96];
            snprintf(what, sizeof what, "threads: round %d, session %d generated", round, i);
            check_status(what, par[i].status, TSLM_OK);
            snprintf(what, sizeof what, "threads: round %d, session %d: concurrent text == sequential text", round, i);
            check_true(what, par[i].status == TSLM_OK && seq[i].status == TSLM_OK && strcmp(par[i].text, seq[i].text) == 0 && strlen(seq[i].text) > 0);
        }
    }
    printf("     session 0: %s\n     session 1: %s\n", seq[0].text, seq[1].text);
    check_true("threads: the two prompts give different texts", strcmp(seq[0].text, seq[1].text) != 0);
    check_status("threads: free", tslm_model_free(m), TSLM_OK);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.tslm WORKDIR [bad|threads|all [LSTM.tslm [CHATTIME.tslm]]]\n", argv[0]);
        return 2;
    }
    const char *what = argc > 3 ? argv[3] : "all";
    check_true("abi version matches the header", tslm_abi_version() == TSLM_ABI_VERSION);
    check_true("version string", tslm_version() && tslm_version()[0] != '\0');
    check_true("status name", strcmp(tslm_status_name(TSLM_ERR_WRONG_KIND), "TSLM_ERR_WRONG_KIND") == 0);
    if (!strcmp(what, "bad") || !strcmp(what, "all")) bad_calls(argv[1], argv[2]);
    if (!strcmp(what, "threads") || !strcmp(what, "all")) threads(argv[1]);
    if (!strcmp(what, "bad") || !strcmp(what, "all")) token_calls(argv[1]);
    if (!strcmp(what, "all")) abort_calls(argv[1]);
    if (!strcmp(what, "bad") || !strcmp(what, "all")) load_progress_calls(argv[1]);
    if (argc > 4) forecaster_calls(argv[4], argv[1]);
    if (argc > 5) chattime_calls(argv[5], argv[4]);
    printf("capi: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

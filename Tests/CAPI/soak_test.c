/* Soak test of the C API (issue 14): many short generations in one process.
 *
 *   soak_test MODEL.tslm [GENERATIONS=10000] [MAX_RSS_GROWTH_KIB=1024]
 *
 * Each generation creates a session (64 positions), appends one of 4 short prompts, generates up
 * to 8 tokens with temperature 0.8 and one of 16 seeds, reads the text back and frees the
 * session. The text of each (prompt, seed) pair is recorded the first time and must be the same
 * every later time (identical seeds, identical outputs). The resident set size is read from
 * /proc/self/statm after the first 10% of the generations (warm-up) and at the end; the growth
 * over the last 90% must stay under MAX_RSS_GROWTH_KIB. Exit 0 when both hold. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tslm.h"
#include "rss.h"

#define CHECK(call) do { int32_t s_ = (call); if (s_ != TSLM_OK) { \
    fprintf(stderr, "FAIL %s: %s (%s)\n", #call, tslm_status_name(s_), tslm_last_error()); exit(1); } } while (0)

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s MODEL.tslm [GENERATIONS] [MAX_RSS_GROWTH_KIB]\n", argv[0]); return 2; }
    long n = argc > 2 ? atol(argv[2]) : 10000;
    long max_growth = argc > 3 ? atol(argv[3]) : 1024;
    const char *prompts[4] = {"Hi", "The sensor reads", "Once upon a time", "1, 2, 3,"};
    enum { PAIRS = 4 * 16, TEXT = 512 };
    static char expected[PAIRS][TEXT];
    static int seen[PAIRS];

    tslm_model *model = NULL;
    CHECK(tslm_model_load(argv[1], tslm_model_default_params(), &model));
    tslm_session_params sp = tslm_session_default_params();
    sp.context_length = 64;
    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = 8;
    gp.sampler.temperature = 0.8f;

    long warm = n / 10, rss_warm = 0, rss_max = 0, mismatches = 0, tokens = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        int p = (int)(i % 4), seed = (int)((i / 4) % 16), pair = p * 16 + seed;
        tslm_session *s = NULL;
        CHECK(tslm_session_new(model, sp, &s));
        CHECK(tslm_session_append_text(s, prompts[p], true));
        gp.sampler.seed = (uint64_t)seed;
        CHECK(tslm_session_generate(s, gp, NULL, NULL));
        char text[TEXT];
        size_t len = 0;
        CHECK(tslm_session_last_text(s, text, sizeof text, &len));
        tslm_generation_stats st;
        CHECK(tslm_session_last_stats(s, &st));
        tokens += st.generated_tokens;
        if (!seen[pair]) { memcpy(expected[pair], text, sizeof text); seen[pair] = 1; }
        else if (strcmp(expected[pair], text) != 0) {
            if (mismatches++ < 5) fprintf(stderr, "MISMATCH generation %ld (prompt %d, seed %d): '%s' != '%s'\n",
                                          i, p, seed, text, expected[pair]);
        }
        CHECK(tslm_session_free(s));
        long r = rss_kib();
        if (i + 1 == warm) rss_warm = r;
        if (r > rss_max) rss_max = r;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long rss_end = rss_kib();
    CHECK(tslm_model_free(model));
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long growth = rss_end - rss_warm;
    printf("soak: %ld generations (%ld tokens) in %.1f s; RSS %ld KiB after %ld (warm-up), %ld KiB at the end "
           "(growth %ld KiB over the last %ld, limit %ld), peak %ld KiB; %ld mismatches among identical seeds\n",
           n, tokens, secs, rss_warm, warm, rss_end, growth, n - warm, max_growth, rss_max, mismatches);
    return (growth < max_growth && mismatches == 0) ? 0 : 1;
}

/* Load test of the C API (issue 14): many threads with their own sessions on one shared model,
 * while another thread loads and frees models and tries to free the shared one.
 *
 *   stress_test MODEL.tslm [THREADS=8] [SECONDS=180] [MAX_RSS_GROWTH_KIB=2048]
 *
 * First the expected texts: each of 4 prompts × 8 seeds generated once, one after another (up to
 * 8 tokens, temperature 0.8). Then THREADS workers loop until SECONDS have passed: a new session,
 * a prompt, a seeded generation, the text compared with the expected one, the session freed (every
 * 4th round the session is reset and reused for a second prompt instead). At the same time a
 * churn thread loads MODEL again (its own handle), generates on it, checks that freeing it while
 * its session lives is refused and that freeing the shared model while the churn thread holds a
 * session on it is refused, then frees both. The shared model is freed at the end, after every
 * session is gone. RSS is read once the workers have warmed up (10% of the time) and at the end.
 * Exit 0 when there were no errors, no text differed for the same prompt and seed, every refusal
 * happened and RSS grew less than MAX_RSS_GROWTH_KIB after warm-up. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tslm.h"
#include "rss.h"

enum { PROMPTS = 4, SEEDS = 8, TEXT = 512, MAX_THREADS = 64 };
static const char *prompts[PROMPTS] = {"Hi", "The sensor reads", "Once upon a time", "1, 2, 3,"};
static char expected[PROMPTS][SEEDS][TEXT];
static tslm_model *shared;
static const char *model_path;
static double deadline;
static atomic_long errors, mismatches, generations, churn_rounds, refusals_missing;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int failed_call(const char *what, int32_t status) {
    if (status == TSLM_OK) return 0;
    if (atomic_fetch_add(&errors, 1) < 5) fprintf(stderr, "FAIL %s: %s (%s)\n", what, tslm_status_name(status), tslm_last_error());
    return 1;
}

/* Appends prompt p to a fresh or reset session, generates with seed s, reads the text into out. */
static int generate(tslm_session *session, int p, int s, char out[TEXT]) {
    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = 8;
    gp.sampler.temperature = 0.8f;
    gp.sampler.seed = (uint64_t)s;
    size_t len = 0;
    if (failed_call("append_text", tslm_session_append_text(session, prompts[p], true))) return 1;
    if (failed_call("generate", tslm_session_generate(session, gp, NULL, NULL))) return 1;
    if (failed_call("last_text", tslm_session_last_text(session, out, TEXT, &len))) return 1;
    return 0;
}

static tslm_session_params small_session(void) {
    tslm_session_params sp = tslm_session_default_params();
    sp.context_length = 64;
    return sp;
}

static void *worker(void *arg) {
    long round = (long)(intptr_t)arg * 7;  /* threads start at different prompts and seeds */
    char text[TEXT];
    while (now() < deadline) {
        tslm_session *session = NULL;
        if (failed_call("session_new", tslm_session_new(shared, small_session(), &session))) continue;
        int uses = round % 4 == 3 ? 2 : 1;
        for (int u = 0; u < uses; u++, round++) {
            int p = (int)(round % PROMPTS), s = (int)((round / PROMPTS) % SEEDS);
            if (u > 0 && failed_call("session_reset", tslm_session_reset(session))) break;
            if (generate(session, p, s, text)) break;
            atomic_fetch_add(&generations, 1);
            if (strcmp(text, expected[p][s]) != 0 && atomic_fetch_add(&mismatches, 1) < 5)
                fprintf(stderr, "MISMATCH prompt %d seed %d: '%s' != '%s'\n", p, s, text, expected[p][s]);
        }
        failed_call("session_free", tslm_session_free(session));
    }
    return NULL;
}

static void *churn(void *arg) {
    (void)arg;
    char text[TEXT];
    while (now() < deadline) {
        tslm_model *own = NULL;
        tslm_session *on_own = NULL, *on_shared = NULL;
        if (failed_call("churn: load", tslm_model_load(model_path, tslm_model_default_params(), &own))) continue;
        if (!failed_call("churn: session_new", tslm_session_new(own, small_session(), &on_own))) {
            if (generate(on_own, 1, 3, text) == 0 && strcmp(text, expected[1][3]) != 0) atomic_fetch_add(&mismatches, 1);
            if (tslm_model_free(own) != TSLM_ERR_INVALID_ARGUMENT) atomic_fetch_add(&refusals_missing, 1);
            failed_call("churn: session_free", tslm_session_free(on_own));
        }
        if (!failed_call("churn: session on the shared model", tslm_session_new(shared, small_session(), &on_shared))) {
            if (tslm_model_free(shared) != TSLM_ERR_INVALID_ARGUMENT) atomic_fetch_add(&refusals_missing, 1);
            failed_call("churn: session_free (shared)", tslm_session_free(on_shared));
        }
        failed_call("churn: model_free", tslm_model_free(own));
        atomic_fetch_add(&churn_rounds, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.tslm [THREADS] [SECONDS] [MAX_RSS_GROWTH_KIB]\n", argv[0]);
        return 2;
    }
    model_path = argv[1];
    int threads = argc > 2 ? atoi(argv[2]) : 8;
    double seconds = argc > 3 ? atof(argv[3]) : 180;
    long max_growth = argc > 4 ? atol(argv[4]) : 2048;
    if (threads < 1 || threads > MAX_THREADS || seconds <= 0) { fprintf(stderr, "bad THREADS or SECONDS\n"); return 2; }

    tslm_model_params mp = tslm_model_default_params();
    mp.n_threads = 1;  /* the workers are the parallelism */
    if (failed_call("load", tslm_model_load(model_path, mp, &shared))) return 1;
    for (int p = 0; p < PROMPTS; p++) {
        for (int s = 0; s < SEEDS; s++) {
            tslm_session *session = NULL;
            if (failed_call("session_new", tslm_session_new(shared, small_session(), &session))) return 1;
            if (generate(session, p, s, expected[p][s])) return 1;
            tslm_session_free(session);
        }
    }

    double start = now();
    deadline = start + seconds;
    pthread_t workers[MAX_THREADS], churner;
    for (int i = 0; i < threads; i++) pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i);
    pthread_create(&churner, NULL, churn, NULL);
    struct timespec tick = {0, 10 * 1000 * 1000};
    while (now() < start + seconds / 10) nanosleep(&tick, NULL);
    long rss_warm = rss_kib();
    for (int i = 0; i < threads; i++) pthread_join(workers[i], NULL);
    pthread_join(churner, NULL);
    long rss_end = rss_kib();
    double elapsed = now() - start;
    failed_call("free the shared model", tslm_model_free(shared));

    long growth = rss_end - rss_warm;
    printf("stress: %d threads for %.0f s: %ld generations (%.1f/s), %ld churn rounds (load, generate, refused "
           "frees, free); %ld errors, %ld mismatches among identical seeds, %ld refusals missing; RSS %ld KiB after "
           "warm-up, %ld KiB at the end (growth %ld KiB, limit %ld)\n",
           threads, elapsed, (long)generations, (double)generations / elapsed, (long)churn_rounds, (long)errors,
           (long)mismatches, (long)refusals_missing, rss_warm, rss_end, growth, max_growth);
    int ok = errors == 0 && mismatches == 0 && refusals_missing == 0 && generations > 0 && churn_rounds > 0 &&
             growth < max_growth;
    printf("stress: %s\n", ok ? "passed" : "FAILED");
    return ok ? 0 : 1;
}

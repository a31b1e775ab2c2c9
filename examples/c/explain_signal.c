/*
 * explain_signal.c — ask an OpenTSLM model about a recording: it streams a rationale, then the
 * answer is printed on its own line.
 *
 *   cc -std=c11 -O2 explain_signal.c -o explain_signal $(pkg-config --cflags --libs tslm)
 *   ./explain_signal basicmotions.tslm recording.csv ["question" [max_tokens]]
 *
 * The CSV has one column per channel (an optional header row names them). The prompt is built as
 * the model was trained: its file carries the task's text in metadata
 *   timeseries.prompt.pre     text before the series (the question; argv[3] replaces it)
 *   timeseries.prompt.series  description of each channel; "{name}", "{sensor}" and "{axis}" are
 *                             replaced here from the column name ("accelerometer_x"), "{mean}"
 *                             and "{std}" by the library
 *   timeseries.prompt.post    text after the series ("Rationale:")
 *   timeseries.preset         the normalization preset ("har", ..., or "custom")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tslm.h>

#include "csv.h"

static bool print_piece(const char *piece, void *user_data) {
    (void)user_data;
    fputs(piece, stdout);
    fflush(stdout);
    return true;
}

static int die(const char *what, int32_t status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, tslm_status_name(status), tslm_last_error());
    return 1;
}

/* A metadata string of the model (malloc'd), or a copy of fallback when the key is absent. */
static char *meta_or(const tslm_model *model, const char *key, const char *fallback) {
    size_t len = 0;
    if (tslm_model_meta(model, key, NULL, 0, &len) != TSLM_ERR_BUFFER_TOO_SMALL) {
        char *copy = malloc(strlen(fallback) + 1);
        if (copy) strcpy(copy, fallback);
        return copy;
    }
    char *buf = malloc(len + 1);
    if (buf && tslm_model_meta(model, key, buf, len + 1, &len) != TSLM_OK) { free(buf); buf = NULL; }
    return buf;
}

/* s with every `key` replaced by value (malloc'd). */
static char *replace_all(const char *s, const char *key, const char *value) {
    size_t n = 0, klen = strlen(key), vlen = strlen(value);
    for (const char *p = s; (p = strstr(p, key)); p += klen) n++;
    char *out = malloc(strlen(s) + n * vlen + 1);
    if (!out) return NULL;
    char *o = out;
    for (const char *p = s; *p;) {
        if (strncmp(p, key, klen) == 0) { memcpy(o, value, vlen); o += vlen; p += klen; }
        else *o++ = *p++;
    }
    *o = '\0';
    return out;
}

/* The description of one channel: "{name}" becomes the column name; for names like
 * "accelerometer_x", "{sensor}" becomes the part before the first '_' and "{axis}" the part after. */
static char *describe(const char *template, const char *name) {
    char sensor[128], axis[128];
    const char *us = strchr(name, '_');
    snprintf(sensor, sizeof sensor, "%.*s", us ? (int)(us - name) : (int)strlen(name), name);
    snprintf(axis, sizeof axis, "%s", us ? us + 1 : "");
    char *a = replace_all(template, "{name}", name);
    char *b = a ? replace_all(a, "{sensor}", sensor) : NULL;
    char *c = (b && us) ? replace_all(b, "{axis}", axis) : b; /* else the library fills {axis} */
    if (c != b) free(b);
    free(a);
    return c;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.tslm RECORDING.csv [QUESTION [MAX_TOKENS]]\n"
                        "  QUESTION \"\" keeps the model's own text before the series\n", argv[0]);
        return 2;
    }
    csv_table rec;
    if (csv_read(argv[2], &rec) != 0) return 1;

    int rc = 1;
    tslm_model *model = NULL;
    tslm_session *session = NULL;
    char *pre = NULL, *series = NULL, *post = NULL, *preset = NULL;

    int32_t st = tslm_model_load(argv[1], tslm_model_default_params(), &model);
    if (st != TSLM_OK) { rc = die("tslm_model_load", st); goto done; }
    if (tslm_model_kind(model) != TSLM_KIND_CLASSIFIER)
        fprintf(stderr, "note: %s is not a time-series classifier model (kind %d)\n", argv[1], tslm_model_kind(model));

    pre = argc > 3 && argv[3][0] ? replace_all(argv[3], "{name}", "") : meta_or(model, "timeseries.prompt.pre", "What does this recording show?");
    series = meta_or(model, "timeseries.prompt.series", "The following is the {name} data, it has mean {mean} and std {std}:");
    post = meta_or(model, "timeseries.prompt.post", "Rationale:");
    preset = meta_or(model, "timeseries.preset", "custom");
    if (!pre || !series || !post || !preset) goto done;

    printf("recording: %s, %d channels x %ld samples (", argv[2], rec.n_columns, rec.length);
    for (int c = 0; c < rec.n_columns; c++) printf("%s%s", c ? ", " : "", rec.names[c]);
    printf(")\n");

    st = tslm_session_new(model, tslm_session_default_params(), &session);
    if (st != TSLM_OK) { rc = die("tslm_session_new", st); goto done; }
    st = tslm_session_append_text(session, pre, true);
    if (st != TSLM_OK) { rc = die("tslm_session_append_text", st); goto done; }
    for (int c = 0; c < rec.n_columns; c++) {
        char *desc = describe(series, rec.names[c]);
        if (!desc) goto done;
        st = tslm_session_append_series(session, rec.values + (size_t)c * (size_t)rec.length, rec.length, 1, desc, preset);
        free(desc);
        if (st != TSLM_OK) { rc = die("tslm_session_append_series", st); goto done; }
    }
    st = tslm_session_append_text(session, post, true);
    if (st != TSLM_OK) { rc = die("tslm_session_append_text", st); goto done; }

    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = argc > 4 ? atoi(argv[4]) : 160;
    printf("rationale: ");
    st = tslm_session_generate(session, gp, print_piece, NULL);
    if (st != TSLM_OK) { rc = die("tslm_session_generate", st); goto done; }

    char answer[256];
    size_t len = 0;
    st = tslm_session_last_answer(session, answer, sizeof answer, &len);
    if (st != TSLM_OK) { rc = die("tslm_session_last_answer", st); goto done; }
    printf("\nanswer: %s\n", answer);
    rc = 0;
done:
    free(pre);
    free(series);
    free(post);
    free(preset);
    tslm_session_free(session);
    tslm_model_free(model);
    csv_free(&rec);
    return rc;
}

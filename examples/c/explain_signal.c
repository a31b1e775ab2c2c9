/*
 * explain_signal.c — ask an OpenTSLM model about a recording: it streams a rationale, then the
 * answer is printed on its own line.
 *
 *   cc -std=c11 -O2 explain_signal.c -o explain_signal $(pkg-config --cflags --libs tslm)
 *   ./explain_signal basicmotions.tslm recording.csv ["question" [max_tokens]]
 *
 * The CSV has one column per channel (an optional header row names them). The prompt is the one
 * the model was trained with, which its file carries (`tslm convert --prompt`): the library
 * builds it from the recording and the column names (tslm_session_append_recording); a question
 * given on the command line replaces the text before the series.
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
    const char *question = argc > 3 && argv[3][0] ? argv[3] : NULL;

    int32_t st = tslm_model_load(argv[1], tslm_model_default_params(), &model);
    if (st != TSLM_OK) { rc = die("tslm_model_load", st); goto done; }
    if (tslm_model_kind(model) != TSLM_KIND_CLASSIFIER)
        fprintf(stderr, "note: %s is not a time-series classifier model (kind %d)\n", argv[1], tslm_model_kind(model));

    printf("recording: %s, %d channels x %ld samples (", argv[2], rec.n_columns, rec.length);
    for (int c = 0; c < rec.n_columns; c++) printf("%s%s", c ? ", " : "", rec.names[c]);
    printf(")\n");

    st = tslm_session_new(model, tslm_session_default_params(), &session);
    if (st != TSLM_OK) { rc = die("tslm_session_new", st); goto done; }
    /* The trained prompt: text before the series, one series per column described with its
     * name ("accelerometer_x" fills {sensor} and {axis}), text after the series. */
    st = tslm_session_append_recording(session, rec.values, rec.length, rec.n_columns,
                                       (const char *const *)rec.names, question);
    if (st != TSLM_OK) { rc = die("tslm_session_append_recording", st); goto done; }

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
    tslm_session_free(session);
    tslm_model_free(model);
    csv_free(&rec);
    return rc;
}

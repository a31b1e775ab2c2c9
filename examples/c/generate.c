/*
 * generate.c — chat with a text model through the tslm C API, streaming the reply.
 *
 *   cc -std=c11 -O2 generate.c -o generate $(pkg-config --cflags --libs tslm)
 *   ./generate smollm2.tslm "What is the capital of France?" [max_tokens]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tslm.h>

static bool print_piece(const char *piece, void *user_data) {
    (void)user_data;
    fputs(piece, stdout);
    fflush(stdout);
    return true; /* false would cancel generation */
}

static int die(const char *what, int32_t status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, tslm_status_name(status), tslm_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.tslm PROMPT [MAX_TOKENS]\n", argv[0]);
        return 2;
    }
    tslm_model *model = NULL;
    tslm_session *session = NULL;
    char *prompt = NULL;
    int rc = 1;

    tslm_model_params mp = tslm_model_default_params();
    int32_t st = tslm_model_load(argv[1], mp, &model);
    if (st != TSLM_OK) return die("tslm_model_load", st);

    /* The chat template turns one user message into the model's prompt format. */
    tslm_chat_message msg = {"user", argv[2]};
    size_t len = 0;
    st = tslm_chat_apply_template(model, &msg, 1, NULL, 0, &len); /* ask for the size first */
    if (st != TSLM_ERR_BUFFER_TOO_SMALL) { rc = die("tslm_chat_apply_template", st); goto done; }
    prompt = malloc(len + 1);
    if (!prompt) goto done;
    st = tslm_chat_apply_template(model, &msg, 1, prompt, len + 1, &len);
    if (st != TSLM_OK) { rc = die("tslm_chat_apply_template", st); goto done; }

    st = tslm_session_new(model, tslm_session_default_params(), &session);
    if (st != TSLM_OK) { rc = die("tslm_session_new", st); goto done; }
    st = tslm_session_append_text(session, prompt, false); /* the template holds any BOS */
    if (st != TSLM_OK) { rc = die("tslm_session_append_text", st); goto done; }

    tslm_generate_params gp = tslm_generate_default_params();
    gp.max_tokens = argc > 3 ? atoi(argv[3]) : 64;
    const char *stops[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>"};
    gp.stop = stops;
    gp.n_stop = 3;
    st = tslm_session_generate(session, gp, print_piece, NULL);
    if (st != TSLM_OK) { rc = die("tslm_session_generate", st); goto done; }

    tslm_generation_stats stats;
    tslm_session_last_stats(session, &stats);
    fprintf(stderr, "\n[%d prompt tokens, %d generated, %.1f tok/s]\n", stats.prompt_tokens,
            stats.generated_tokens, stats.generated_tokens / (stats.generate_seconds > 0 ? stats.generate_seconds : 1));
    printf("\n");
    rc = 0;
done:
    free(prompt);
    tslm_session_free(session);
    tslm_model_free(model);
    return rc;
}

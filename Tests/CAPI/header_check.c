/* Compiled by tools/capi_test.sh as C99 and C11 with -Wall -Wextra -Wpedantic -Werror: the
 * header must be clean in strict C. It also checks a few layout promises of the ABI. */
#include <tslm.h>

#include <stddef.h>

typedef char check_abi_version[TSLM_ABI_VERSION == 3 ? 1 : -1];
typedef char check_status_negative[TSLM_ERR_IO < 0 && TSLM_ERR_INTERNAL < 0 ? 1 : -1];
typedef char check_fixed_width[sizeof(tslm_chat_message) == 2 * sizeof(const char *) ? 1 : -1];

int main(void) {
    tslm_model_params mp = tslm_model_default_params();
    tslm_session_params sp = tslm_session_default_params();
    tslm_generate_params gp = tslm_generate_default_params();
    tslm_forecast_params fp = tslm_forecast_default_params();
    tslm_generation_stats stats;
    tslm_token_callback cb = NULL;
    tslm_log_callback log = NULL;
    (void)mp; (void)sp; (void)gp; (void)fp; (void)stats; (void)cb; (void)log;
    return tslm_abi_version() == TSLM_ABI_VERSION ? 0 : 1;
}

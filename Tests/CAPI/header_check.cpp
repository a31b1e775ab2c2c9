// Compiled by tools/capi_test.sh as C++17 with -Wall -Wextra -Wpedantic -Werror: tslm.h and the
// examples' tslm.hpp must be clean in C++.
#include <tslm.h>
#include "tslm.hpp"

static_assert(TSLM_ABI_VERSION == 3, "ABI version");

int main() {
    tslm_model_params mp = tslm_model_default_params();
    (void)mp;
    return tslm_abi_version() == TSLM_ABI_VERSION ? 0 : 1;
}

/* libFuzzer target: the isf loader on any input; what loads is
 * finished and queried. */
#include "fuzz_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_profile(data, size, tv_profile_load_isf);
}

/* libFuzzer target: the LiME parser (the first bytes of each input are
 * forced to the LiME magic). */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_file(data, size, "EMiL");
}

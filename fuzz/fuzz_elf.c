/* libFuzzer target: the ELF core parser (the first bytes of each input
 * are forced to the ELF magic). */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_file(data, size, "\x7f" "ELF");
}

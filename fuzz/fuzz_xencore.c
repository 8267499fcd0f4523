/* libFuzzer target: the Xen dump-core parser.  The header fields that send
 * a file to it (ELF64, little-endian, ET_CORE, no program headers, some
 * sections) are forced, so every input reaches the section walk. */
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 2, 1};
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    if (size >= 64) {
        memcpy(copy, ident, sizeof ident);
        copy[16] = 4; /* ET_CORE */
        copy[17] = 0;
        copy[56] = copy[57] = 0; /* e_phnum */
        if (copy[60] == 0 && copy[61] == 0)
            copy[60] = 1; /* e_shnum */
    }
    fuzz_file(copy, size, NULL);
    free(copy);
    return 0;
}

/* libFuzzer target: Windows crash dumps (full, bitmap and triage).  Byte
 * 7 of the input picks the magic ('P': PAGEDUMP, else PAGEDU64), which then
 * covers bytes 0-7.  An opened triage dump is also read by virtual address
 * at each block it kept and at its KDBG address. */
#include "driver/file/crashdump.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_triage(const uint8_t *data, size_t size)
{
    struct vmi_instance *vmi = fuzz_vmi();
    tv_driver_t d;
    if (tv_file_open_mem(vmi, data, size, &d) != 0)
        return;
    const tv_crashdump_t *cd = tv_crashdump_of(&d);
    uint8_t buf[256];
    for (size_t i = 0; cd && i < cd->nblocks && i < 64; i++) {
        const tv_cd_block_t *b = &cd->blocks[i];
        size_t done = 0;
        if (tv_crashdump_read_va(vmi, &d, b->va, buf, 1, NULL))
            abort(); /* a block the driver kept must be readable */
        (void)tv_crashdump_read_va(vmi, &d, b->va + b->size - 1, buf,
                                   sizeof buf, &done);
        if (done == 0)
            abort();
    }
    if (cd)
        (void)tv_crashdump_read_va(vmi, &d, cd->kd_debugger_data_block, buf,
                                   sizeof buf, NULL);
    d.close(d.ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    const char *magic = data[7] == 'P' ? "PAGEDUMP" : "PAGEDU64";
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    memcpy(copy, magic, 8);
    fuzz_file(copy, size, NULL);
    fuzz_triage(copy, size);
    free(copy);
    return 0;
}

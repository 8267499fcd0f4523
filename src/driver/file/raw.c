/*
 * Raw dumps (QEMU's pmemsave, /dev/mem copies, a memory-backend file): the
 * whole file is guest-physical memory from address 0.
 */
#include "driver/file/file_int.h"

int file_raw_parse(tv_file_t *f)
{
    f->arch = VMI_ARCH_UNKNOWN; /* a raw image does not say */
    return file_range_add(f, "raw", 0, f->size, 0);
}

/*
 * The file driver: memory dumps (raw, ELF core, LiME), format detected from
 * the content, never from the name.  Hosted code.
 */
#ifndef TV_DRIVER_FILE_H
#define TV_DRIVER_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/tv.h"

/* Opens the dump at path read-only, maps it and fills *out.  On failure
 * returns a negative TINYVMI_* status, records why with tv_fail() and leaves
 * *out empty (nothing to close). */
int tv_file_open(struct vmi_instance *vmi, const char *path,
                 tv_driver_t *out);

/* The same over an image already in memory (fuzzers, tests).  buf is not
 * copied: it must outlive the driver; out->close frees only the parse state. */
int tv_file_open_mem(struct vmi_instance *vmi, const void *buf, size_t size,
                     tv_driver_t *out);

#endif /* TV_DRIVER_FILE_H */

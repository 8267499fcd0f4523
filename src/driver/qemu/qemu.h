/*
 * The live QEMU driver: guest RAM from QEMU's shared memory-backend file,
 * control through QMP, registers and debug events through the gdbstub.
 * No patched QEMU, no patched kernel; TCG and KVM alike.  Hosted code.
 */
#ifndef TV_DRIVER_QEMU_H
#define TV_DRIVER_QEMU_H

#include "core/tv.h"

/* Attaches to the QEMU whose QMP socket is at qmp_path: maps its RAM,
 * learns the guest-physical layout, connects to its gdbstub (opening one if
 * it has none) and leaves the guest running as it found it.  gdb (NULL:
 * find it) names the gdbstub ("unix:PATH" or "tcp:HOST:PORT").  On failure
 * returns a negative status with the reason recorded and *out empty. */
int tv_qemu_open(struct vmi_instance *vmi, const char *qmp_path,
                 const char *gdb, tv_driver_t *out);

#endif

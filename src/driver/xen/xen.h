/*
 * The live Xen driver: a domain's memory through foreign mappings, vCPU
 * registers and pause/resume through libxenctrl, loaded at run time.
 * Hosted code; runs in dom0 (or a domain with the privilege).
 */
#ifndef TV_DRIVER_XEN_H
#define TV_DRIVER_XEN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tv.h"

/* Attaches to the domain named name (by_id false) or with id domid: loads
 * Xen's libraries, finds the domain's memory (for a PV guest the machine
 * frames of its p2m, for PVH/HVM its populated guest frames).  On failure
 * returns a negative status with the reason recorded and *out empty. */
int tv_xen_open(struct vmi_instance *vmi, const char *name, bool by_id,
                uint32_t domid, tv_driver_t *out);

#endif

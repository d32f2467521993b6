/* pmap/pmap.h - umbrella header: includes every public pmap module. */
#ifndef PMAP_PMAP_H
#define PMAP_PMAP_H

#include <pmap/version.h>
#include <pmap/export.h>
#include <pmap/error.h>

#endif

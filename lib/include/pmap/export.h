/* pmap/export.h - symbol visibility for libpmap's public API. */
#ifndef PMAP_EXPORT_H
#define PMAP_EXPORT_H

#if defined(__GNUC__)
#define PM_API __attribute__((visibility("default")))
#else
#define PM_API
#endif

#endif

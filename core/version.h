/* version.h — the locus version string recorded in every output. */
#ifndef LOCUS_VERSION_H
#define LOCUS_VERSION_H
#define LOCUS_VERSION "0.1.0"
#endif

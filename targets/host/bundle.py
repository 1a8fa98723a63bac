"""The standalone bundle: a Makefile and an example main.c that build the model without Python.

main.c's file format is raw: each input file holds exactly the input's bytes (dense,
row-major, little-endian, the dtype and shape listed in model.h), and each output is written
the same way. ``make`` builds ``model_main``; ``./model_main in0.bin ... out0.bin ...`` runs it.
"""

from __future__ import annotations

MAIN_C = r"""/* Example driver for the generated model (written by qnnc).
 *
 * usage: model_main [-p PROFILE] IN_0.bin ... IN_{n-1}.bin OUT_0.bin ... OUT_{m-1}.bin
 * (-p only for a model compiled for several shape profiles: which one, 0 by default)
 * Every file is raw: the tensor's bytes, dense row-major little-endian, of exactly the size
 * model.h lists (qnnc_model_info has the names, dtypes and shapes). */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

static int read_file(const char *path, void *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    size_t got = fread(buf, 1, n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        fprintf(stderr, "%s: expected exactly %zu bytes\n", path, n);
        return 1;
    }
    return 0;
}

static int write_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return 1; }
    size_t put = fwrite(buf, 1, n, f);
    return fclose(f) != 0 || put != n;
}

int main(int argc, char **argv) {
#ifdef QNNC_NUM_PROFILES
    /* a model of several shape profiles: "-p K" picks profile K (default 0) */
    int profile = 0;
    if (argc > 2 && argv[1][0] == '-' && argv[1][1] == 'p' && argv[1][2] == 0) {
        profile = atoi(argv[2]);
        argv[2] = argv[0];
        argc -= 2;
        argv += 2;
    }
    if (profile < 0 || profile >= QNNC_NUM_PROFILES) {
        fprintf(stderr, "profile %d does not exist; the model has %d\n", profile,
                QNNC_NUM_PROFILES);
        return 2;
    }
    const qnnc_model_info_t *m = qnnc_profiles[profile];
#else
    const qnnc_model_info_t *m = &qnnc_model_info;
#endif
    if (argc != 1 + m->num_inputs + m->num_outputs) {
        fprintf(stderr, "usage: %s", argv[0]);
#ifdef QNNC_NUM_PROFILES
        fprintf(stderr, " [-p PROFILE]");
#endif
        for (int k = 0; k < m->num_inputs; ++k) fprintf(stderr, " IN_%d.bin", k);
        for (int k = 0; k < m->num_outputs; ++k) fprintf(stderr, " OUT_%d.bin", k);
        fprintf(stderr, "\n");
        for (int k = 0; k < m->num_inputs; ++k)
            fprintf(stderr, "  input %d: %s (%zu bytes)\n", k, m->inputs[k].name,
                    m->inputs[k].nbytes);
        return 2;
    }
    void *ins[QNNC_NUM_INPUTS + 1], *outs[QNNC_NUM_OUTPUTS + 1];
    int rc = 0;
    for (int k = 0; k < m->num_inputs; ++k) {
        ins[k] = malloc(m->inputs[k].nbytes + 1);
        if (!ins[k] || read_file(argv[1 + k], ins[k], m->inputs[k].nbytes)) return 1;
    }
    for (int k = 0; k < m->num_outputs; ++k) {
        outs[k] = malloc(m->outputs[k].nbytes + 1);
        if (!outs[k]) return 1;
    }
#ifdef QNNC_NUM_PROFILES
    rc = qnnc_run_profile(profile, (const void *const *)ins, outs);
#else
    rc = qnnc_run((const void *const *)ins, outs);
#endif
    for (int k = 0; k < m->num_outputs && rc == 0; ++k)
        rc = write_file(argv[1 + m->num_inputs + k], outs[k], m->outputs[k].nbytes);
    for (int k = 0; k < m->num_inputs; ++k) free(ins[k]);
    for (int k = 0; k < m->num_outputs; ++k) free(outs[k]);
    return rc;
}
"""

MAKEFILE = """\
# Builds the generated model without Python (written by qnnc).
#   make                 -> model_main (see main.c for the raw input/output file format)
#   make libqnnc_model.a -> the model as a static library (link it; include model.h)
CFLAGS ?= {cflags}
LDLIBS = -lm{omp}
SRCS = {srcs}
OBJS = $(SRCS:.c=.o)
HDRS = $(wildcard *.h)

model_main: main.c $(SRCS) $(HDRS) $(wildcard weights.bin)
\t$(CC) $(CFLAGS) -I. -o $@ main.c $(SRCS) $(LDLIBS)

libqnnc_model.a: $(OBJS)
\t$(AR) rcs $@ $(OBJS)

%.o: %.c $(HDRS) $(wildcard weights.bin)
\t$(CC) $(CFLAGS) -I. -c $< -o $@

clean:
\trm -f model_main libqnnc_model.a *.o

.PHONY: clean
"""


def bundle_files(c_files: list[str], cflags: list[str], threads: int) -> dict[str, str]:
    """Makefile and main.c for the generated ``c_files`` (``cflags`` without -fPIC, which a
    program needs not)."""
    flags = " ".join(f for f in cflags if f != "-fPIC")
    return {
        "Makefile": MAKEFILE.format(cflags=flags, omp=" -fopenmp" if threads > 1 else "",
                                    srcs=" ".join(c_files)),
        "main.c": MAIN_C,
    }

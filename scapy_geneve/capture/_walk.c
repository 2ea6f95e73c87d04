/*
 * The record walks of the capture readers, compiled.
 *
 * Optional: when this module is missing (no compiler at install, or
 * SCAPY_GENEVE_PURE_PYTHON=1), capture/accel.py hands out the Python walks
 * these two functions mirror, line for line (both are in accel.py):
 *
 *   pcap_walk(buf, big_endian, ts_mult)   py_pcap_walk(); its timestamps and
 *                                         lengths: scan_batch.header_arrays
 *   epb_run(buf, pos, big_endian, max)    py_epb_run()
 *
 * tests/test_accel.py proves each equal to its Python twin with Hypothesis.
 * Both return the start offsets of the records (or Enhanced Packet Blocks)
 * found, as native int64 bytes (accel.py appends them to an array('q') with
 * frombytes), and the offset where the walk stopped.  No Python object is
 * touched inside the loops.
 *
 * The GIL is kept (tests/test_accel.py::test_the_walks_keep_the_gil): a walk is
 * short (an EPB run is often one block; a pcap walk takes about 2 ms per 4 MiB
 * chunk of 60-byte packets, as long as a numpy operation on the chunk), and a
 * thread that lets the GIL go waits up to the switch interval (5 ms) to take it
 * back from a busy thread, at every call: reading a pcapng whose packets
 * alternate with other blocks beside one busy Python thread took 10 s instead
 * of 1 s.
 *
 * A pcap record (draft-ietf-opsawg-pcap, section 5):
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                      Timestamp (Seconds)                      |
 *   |            Timestamp (Microseconds or nanoseconds)            |
 *   |                    Captured Packet Length                     |
 *   |                    Original Packet Length                     |
 *   /                          Packet Data                          /
 *
 * An Enhanced Packet Block (draft-ietf-opsawg-pcapng, section 4.3) starts
 * with Block Type (6) and Block Total Length, 32 bits each.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define REC_HDR_LEN 16 /* pcap record header */
#define BLOCK_HDR_LEN 12 /* pcapng: type, length, and the trailing length */
#define EPB_MIN_LEN 32
#define BT_EPB 6

static uint32_t u32_at(const unsigned char *p, int big_endian)
{
    if (big_endian)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* A growing int64 array, freed before the walk returns. */
typedef struct {
    int64_t *items;
    Py_ssize_t len, cap;
} Int64s;

static int int64s_append(Int64s *s, int64_t value)
{
    if (s->len == s->cap) {
        Py_ssize_t cap = s->cap ? s->cap * 2 : 1024;
        int64_t *items = PyMem_RawRealloc(s->items, (size_t)cap * sizeof(int64_t));
        if (items == NULL)
            return -1;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->len++] = value;
    return 0;
}

/* S's items as native int64 bytes, freeing S; NULL if FAILED or out of memory. */
static PyObject *int64s_take(Int64s *s, int failed)
{
    PyObject *raw = NULL;
    if (!failed)
        raw = PyBytes_FromStringAndSize((const char *)s->items, s->len * (Py_ssize_t)sizeof(int64_t));
    PyMem_RawFree(s->items);
    s->items = NULL;
    return raw;
}

/* A tuple of the K arrays' bytes and POS, freeing the arrays; MemoryError if the walk ran out. */
static PyObject *walk_result(Int64s *arrays, int k, int64_t pos, int failed)
{
    PyObject *out = PyTuple_New(k + 1);
    for (int i = 0; i < k; i++) {
        PyObject *raw = int64s_take(&arrays[i], failed || out == NULL);
        if (raw == NULL)
            failed = 1;
        else
            PyTuple_SET_ITEM(out, i, raw);
    }
    PyObject *stop = (failed || out == NULL) ? NULL : PyLong_FromLongLong((long long)pos);
    if (stop == NULL) {
        Py_XDECREF(out);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    PyTuple_SET_ITEM(out, k, stop);
    return out;
}

PyDoc_STRVAR(pcap_walk_doc,
"pcap_walk(buf, big_endian, ts_mult) -> (starts, ts_ns, wirelen, pos)\n\n"
"Start offsets of the complete pcap records in BUF and where the walk stopped\n"
"(accel.py's py_pcap_walk(), compiled), and each record's timestamp in\n"
"nanoseconds (seconds * 10^9 + fraction * TS_MULT) and original length, read\n"
"while its header is at hand: what scan_batch.header_arrays gathers otherwise.\n"
"Native int64 bytes each.");

static PyObject *pcap_walk(PyObject *module, PyObject *args)
{
    Py_buffer view;
    int big_endian, failed = 0;
    long long ts_mult;
    if (!PyArg_ParseTuple(args, "y*pL:pcap_walk", &view, &big_endian, &ts_mult))
        return NULL;
    const unsigned char *buf = view.buf;
    int64_t n = view.len, pos = 0, last = n - REC_HDR_LEN;
    Int64s found[3] = {{NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}}; /* starts, ts_ns, wirelen */
    while (pos <= last) {
        const unsigned char *h = buf + pos;
        int64_t sec = u32_at(h, big_endian), frac = u32_at(h + 4, big_endian);
        if (int64s_append(&found[0], pos) < 0 || int64s_append(&found[1], sec * 1000000000 + frac * ts_mult) < 0
            || int64s_append(&found[2], (int64_t)u32_at(h + 12, big_endian)) < 0) {
            failed = 1;
            break;
        }
        pos += REC_HDR_LEN + (int64_t)u32_at(h + 8, big_endian);
    }
    if (!failed && pos > n) { /* the last record runs past the buffer: not ours yet */
        pos = found[0].items[found[0].len - 1];
        for (int i = 0; i < 3; i++)
            found[i].len--;
    }
    PyBuffer_Release(&view);
    return walk_result(found, 3, pos, failed);
}

PyDoc_STRVAR(epb_run_doc,
"epb_run(buf, pos, big_endian, max_block_len) -> (starts, pos)\n\n"
"Walk a run of complete, plausible Enhanced Packet Blocks in BUF from POS:\n"
"accel.py's py_epb_run(), compiled.");

static PyObject *epb_run(PyObject *module, PyObject *args)
{
    Py_buffer view;
    long long start, max_len;
    int big_endian, failed = 0;
    if (!PyArg_ParseTuple(args, "y*LpL:epb_run", &view, &start, &big_endian, &max_len))
        return NULL;
    const unsigned char *buf = view.buf;
    int64_t n = view.len, pos = start;
    Int64s s = {NULL, 0, 0};
    while (pos >= 0 && pos + BLOCK_HDR_LEN <= n) {
        uint32_t btype = u32_at(buf + pos, big_endian);
        int64_t blen = u32_at(buf + pos + 4, big_endian);
        if (btype != BT_EPB || blen < EPB_MIN_LEN || blen > max_len || (blen & 3) || pos + blen > n)
            break;
        if (int64s_append(&s, pos) < 0) {
            failed = 1;
            break;
        }
        pos += blen;
    }
    PyBuffer_Release(&view);
    return walk_result(&s, 1, pos, failed);
}

static PyMethodDef walk_methods[] = {
    {"pcap_walk", pcap_walk, METH_VARARGS, pcap_walk_doc},
    {"epb_run", epb_run, METH_VARARGS, epb_run_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef walk_module = {
    PyModuleDef_HEAD_INIT,
    "scapy_geneve.capture._walk",
    "The capture readers' record walks, compiled (optional: see capture/accel.py).",
    -1,
    walk_methods,
};

PyMODINIT_FUNC PyInit__walk(void)
{
    return PyModule_Create(&walk_module);
}

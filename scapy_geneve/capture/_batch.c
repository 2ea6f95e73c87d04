/*
 * The vectorised batch's stages, compiled: one pass over a batch's packets.
 *
 * Optional, as _walk.c: when this module is missing (no compiler at install, or
 * SCAPY_GENEVE_PURE_PYTHON=1) scan_batch.py runs its numpy stages, which are the
 * reference this file mirrors, stage for stage:
 *
 *   link → outer IP → transport (UDP tunnels, STT, NVGRE, L2TPv3/IP) → inner
 *
 * A packet either stage calls not plain (ok = 0) goes to the wire decoder (the
 * fallback stage, in Python, after this pass).  tests/test_batch_compiled.py proves with
 * Hypothesis that this pass and the numpy stages give the same columns: ok,
 * kind, identifier, C and O bits, inner key, outer IP version, and (with detail)
 * every detail column of the plain packets and the same options.
 *
 * The numpy stages run each check for every packet of the batch, one gather at
 * a time, touching each packet's headers again in each; here each packet is
 * read once, its header fields while they are in the cache.
 *
 * Every protocol number, port and kind code comes from Python (the registry,
 * decode.py, scan_record.py) through analyse()'s arguments; what is written
 * here are the header layouts, as in scan_batch.py:
 *
 *   Geneve (RFC 8926 §3.4)           VXLAN (RFC 7348) / VXLAN-GPE
 *   |Ver|Opt Len|O|C| Rsvd| Protocol Type |   |R|R|Ver|I|P|B|O| Reserved |Next Proto|
 *   |        VNI            |   Reserved    |   |        VNI            | Reserved  |
 *   |   Option Class | Type |R|R|R| Length |   (options: RFC 8926 §3.5)
 *
 * Packets are independent (STT in order, whose context IDs flow between
 * segments, is left to the decoder), so the order of the stages per packet is
 * the numpy order per batch.  The GIL is kept (a pass over a 16 MiB batch takes
 * a few milliseconds; see _walk.c on why).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The port table's bits (scan_batch._port_table) and the protocol table's (_proto_table). */
#define P_GENEVE 1
#define P_GPE 2
#define P_VXLAN 4
#define P_L2TP 8
#define P_STT 16
#define P_REG_UDP 32
#define P_REG_TCP 64
#define IP_EXT 1 /* an IPv6 extension header */
#define IP_REGISTERED 2 /* a kind added with registry.register, straight over IP */
#define IP_PORTED 4 /* TCP, UDP, SCTP: ports in the first 4 bytes */

#define MAX_LINKS 16
#define MAX_TPIDS 8
#define N_OUT 9
#define N_DET 16 /* scan_batch.DETAIL_COLUMNS + _INNER_ENDS */
#define N_CONSTS 17
#define PREFETCH_AHEAD 8 /* packets */
#define ADDRESS_ROOM 46 /* the longest address text: an IPv6 one with an IPv4 tail (INET6_ADDRSTRLEN) */

/* Detail columns, in scan_batch's order. */
enum { D_VLAN_N, D_VLAN1, D_VLAN2, D_SPORT, D_DPORT, D_PROTO, D_FLOW, D_CONTROL, D_INNER_ET, D_INNER_POS,
       D_INNER_VERSION, D_INNER_PROTO, D_INNER_SPORT, D_INNER_DPORT, D_INNER_L4, D_INNER_IPEND };

/* analyse()'s constants, in scan_batch._c_constants' order. */
typedef struct {
    int64_t eth_ip, eth_ipv6, eth_teb, udp, tcp, gre, l2tp, gre_mask, gre_k, stt_hdr_len, inner_nonip, k_geneve,
        k_vxlan, k_gpe, k_l2tpv3, k_nvgre, k_stt;
} Consts;

typedef struct {
    int64_t linktype, hlen, type_at; /* type_at < 0: raw IP (the version nibble says which) */
} Link;

typedef struct {
    int64_t *items;
    Py_ssize_t len, cap;
} Int64s;

typedef struct {
    const uint8_t *B;
    int64_t L;
    const uint8_t *ports, *protos;
    Link links[MAX_LINKS];
    int nlinks;
    int64_t tpids[MAX_TPIDS];
    int ntpids;
    Consts k;
    int64_t l2tp_skip;
    int in_order;
    /* outputs, one item per packet */
    uint8_t *ok, *has_vni, *crit, *oam;
    int8_t *kind, *outer_ip;
    uint64_t *vni;
    int64_t *inner, *l3;
    int64_t *det; /* N_DET rows of n, or NULL */
    Py_ssize_t n;
    Int64s opts[5]; /* packet, class, type, length, position */
    uint8_t *data; /* with det: the plain options' data bytes, one after the other */
    Py_ssize_t data_len, data_cap;
    int failed;
} Ctx;

/* One packet on its way: where its current layer ends, its IP end, protocol. */
typedef struct {
    Py_ssize_t i;
    int64_t end, ipend, l4, proto, first;
    Py_ssize_t opt_mark, data_mark; /* options and option data before this packet's */
} Pkt;

/* -- reading ------------------------------------------------------------------------------ */
/* Reads past the buffer give 0: only packets a bounds check fails read there. */
static inline int64_t g8(const Ctx *c, int64_t p)
{
    return (p >= 0 && p < c->L) ? c->B[p] : 0;
}

static inline int64_t g16(const Ctx *c, int64_t p)
{
    if (p < 0 || p > c->L - 2)
        return 0;
    return ((int64_t)c->B[p] << 8) | c->B[p + 1];
}

static inline uint64_t g32(const Ctx *c, int64_t p)
{
    if (p < 0 || p > c->L - 4)
        return 0;
    const uint8_t *b = c->B + p;
    return ((uint64_t)b[0] << 24) | ((uint64_t)b[1] << 16) | ((uint64_t)b[2] << 8) | b[3];
}

static inline uint64_t g64(const Ctx *c, int64_t p)
{
    return (p < 0 || p > c->L - 8) ? 0 : (g32(c, p) << 32) | g32(c, p + 4);
}

static inline void put(Ctx *c, int column, Py_ssize_t i, int64_t value)
{
    if (c->det != NULL)
        c->det[column * c->n + i] = value;
}

static int is_tpid(const Ctx *c, int64_t et)
{
    for (int j = 0; j < c->ntpids; j++)
        if (c->tpids[j] == et)
            return 1;
    return 0;
}

static void identify(Ctx *c, Pkt *p, int64_t code, uint64_t value)
{
    if (code >= 0)
        c->kind[p->i] = (int8_t)code;
    c->vni[p->i] = value;
    c->has_vni[p->i] = 1;
}

/* With det, the LEN data bytes at P of an option (inside the buffer: the caller checked). */
static int data_append(Ctx *c, int64_t p, int64_t len)
{
    if (len == 0)
        return 0;
    if (c->data_len + len > c->data_cap) {
        Py_ssize_t cap = c->data_cap ? c->data_cap : 65536;
        while (cap < c->data_len + len)
            cap *= 2;
        uint8_t *data = PyMem_RawRealloc(c->data, (size_t)cap);
        if (data == NULL) {
            c->failed = 1;
            return -1;
        }
        c->data = data;
        c->data_cap = cap;
    }
    memcpy(c->data + c->data_len, c->B + p, (size_t)len);
    c->data_len += len;
    return 0;
}

static int opt_append(Ctx *c, int col, int64_t value)
{
    Int64s *s = &c->opts[col];
    if (s->len == s->cap) {
        Py_ssize_t cap = s->cap ? s->cap * 2 : 4096;
        int64_t *items = PyMem_RawRealloc(s->items, (size_t)cap * sizeof(int64_t));
        if (items == NULL) {
            c->failed = 1;
            return -1;
        }
        s->items = items;
        s->cap = cap;
    }
    s->items[s->len++] = value;
    return 0;
}

/* -- inner frames (_inner, _inner_ethernet, _inner_ip) -------------------------------------- */
static void inner_ip(Ctx *c, Pkt *p, int64_t ip, int version)
{
    Py_ssize_t i = p->i;
    int64_t ie = p->end, ipend, l4, proto, first = 1, bad;
    if (version == 4) {
        uint64_t word = g64(c, ip);
        int64_t ver = (word >> 60) & 0x0F, ihl = ((word >> 56) & 0x0F) * 4, tot = (word >> 32) & 0xFFFF;
        proto = g8(c, ip + 9);
        first = (word & 0x1FFF) == 0;
        bad = (ip + 20 > ie) || ver != 4 || ihl < 20 || ip + ihl > ie || tot < ihl;
        ipend = ip + tot;
        l4 = ip + ihl;
    } else {
        proto = g8(c, ip + 6);
        int64_t plen = g16(c, ip + 4);
        bad = (ip + 40 > ie) || (g8(c, ip) >> 4) != 6 || (c->protos[proto] & IP_EXT) || plen == 0;
        ipend = ip + 40 + plen;
        l4 = ip + 40;
    }
    if (ipend < ie)
        ie = ipend;
    int ported = first && (c->protos[proto] & IP_PORTED);
    if (bad || (ported && l4 + 4 > ie)) {
        c->ok[i] = 0;
        return;
    }
    c->inner[i] = proto;
    if (c->det == NULL)
        return;
    put(c, D_INNER_POS, i, ip);
    put(c, D_INNER_VERSION, i, version);
    put(c, D_INNER_PROTO, i, proto);
    put(c, D_INNER_L4, i, l4);
    put(c, D_INNER_IPEND, i, ipend);
    if (ported) {
        uint64_t pair = g32(c, l4);
        put(c, D_INNER_SPORT, i, (int64_t)(pair >> 16));
        put(c, D_INNER_DPORT, i, (int64_t)(pair & 0xFFFF));
    }
}

/* WHAT: 0 Ethernet, 4 IPv4, 6 IPv6. */
static void inner(Ctx *c, Pkt *p, int64_t pos, int what)
{
    Py_ssize_t i = p->i;
    if (what != 0) {
        put(c, D_INNER_ET, i, what == 4 ? c->k.eth_ip : c->k.eth_ipv6);
        inner_ip(c, p, pos, what);
        return;
    }
    int64_t ee = p->end;
    int good = pos + 14 <= ee;
    int64_t et = g16(c, pos + 12);
    pos += 14;
    for (int depth = 0; depth < 2 && is_tpid(c, et); depth++) {
        good = good && pos + 4 <= ee;
        et = g16(c, pos + 2);
        pos += 4;
    }
    good = good && !is_tpid(c, et);
    put(c, D_INNER_ET, i, et);
    if (!good) {
        c->ok[i] = 0;
        return;
    }
    if (et == c->k.eth_ip)
        inner_ip(c, p, pos, 4);
    else if (et == c->k.eth_ipv6)
        inner_ip(c, p, pos, 6);
    else
        c->inner[i] = c->k.inner_nonip | et;
}

/* -- tunnels over UDP (_geneve, _geneve_options, _vxlan, _l2tp_udp) -------------------------- */
static void geneve(Ctx *c, Pkt *p, int64_t gp)
{
    Py_ssize_t i = p->i;
    int64_t ge = p->end;
    c->kind[i] = (int8_t)c->k.k_geneve;
    uint64_t word = g64(c, gp);
    uint64_t head = word >> 32;
    int64_t oend = gp + 8 + (int64_t)((head >> 24) & 0x3F) * 4;
    if (gp + 8 > ge || (head >> 30) != 0 || oend > ge) {
        c->ok[i] = 0;
        return;
    }
    c->crit[i] = (head & 0x400000) != 0;
    c->oam[i] = (head & 0x800000) != 0;
    identify(c, p, -1, (word >> 8) & 0xFFFFFF);
    for (int64_t q = gp + 8; q < oend;) {
        uint64_t opt = g32(c, q);
        int64_t ln = opt & 0x1F;
        if (opt_append(c, 0, i) || opt_append(c, 1, opt >> 16) || opt_append(c, 2, (opt >> 8) & 0xFF)
            || opt_append(c, 3, ln) || opt_append(c, 4, q))
            return;
        if (q + 4 + ln * 4 > oend) {
            c->ok[i] = 0;
            return;
        }
        if (c->det != NULL && data_append(c, q + 4, ln * 4))
            return;
        q += 4 + ln * 4;
    }
    int64_t proto = head & 0xFFFF;
    put(c, D_PROTO, i, proto);
    if (proto == c->k.eth_teb)
        inner(c, p, oend, 0);
    else if (proto == c->k.eth_ip)
        inner(c, p, oend, 4);
    else if (proto == c->k.eth_ipv6)
        inner(c, p, oend, 6);
}

static void vxlan(Ctx *c, Pkt *p, int64_t vp, int gpe)
{
    Py_ssize_t i = p->i;
    c->kind[i] = (int8_t)(gpe ? c->k.k_gpe : c->k.k_vxlan);
    int64_t flags = g8(c, vp);
    if (vp + 8 > p->end || (flags & 0x08) == 0 || (gpe && ((flags >> 4) & 0x03) != 0)) {
        c->ok[i] = 0;
        return;
    }
    identify(c, p, gpe ? c->k.k_gpe : c->k.k_vxlan, g32(c, vp + 4) >> 8);
    if (!gpe) {
        inner(c, p, vp + 8, 0);
        return;
    }
    c->oam[i] = (flags & 0x01) != 0;
    int64_t next = g8(c, vp + 3);
    int pbit = (flags & 0x04) != 0;
    if (pbit)
        put(c, D_PROTO, i, next);
    if (!pbit || next == 3)
        inner(c, p, vp + 8, 0);
    else if (next == 1)
        inner(c, p, vp + 8, 4);
    else if (next == 2)
        inner(c, p, vp + 8, 6);
}

/* L2TPv3 over UDP (RFC 3931 §4.1.2.1) */
static void l2tp_udp(Ctx *c, Pkt *p, int64_t lp)
{
    Py_ssize_t i = p->i;
    int64_t le = p->end;
    if (!(lp + 2 <= le && (g16(c, lp) & 0x000F) == 3)) /* L2F / L2TPv2: no tunnel */
        return;
    c->kind[i] = (int8_t)c->k.k_l2tpv3;
    int data = (g16(c, lp) & 0x8000) == 0;
    put(c, D_CONTROL, i, data ? 0 : 1);
    if (!data) {
        if (lp + 12 > le)
            c->ok[i] = 0;
        return;
    }
    if (lp + 8 > le) {
        c->ok[i] = 0;
        return;
    }
    identify(c, p, c->k.k_l2tpv3, g32(c, lp + 4));
    inner(c, p, lp + 8 + c->l2tp_skip, 0);
}

/* -- transports (_udp, _stt, _nvgre, _l2tp_ip) ------------------------------------------------ */
static void udp(Ctx *c, Pkt *p)
{
    Py_ssize_t i = p->i;
    int64_t u = p->l4;
    if (u + 8 > p->end) {
        c->ok[i] = 0;
        return;
    }
    uint64_t word = g64(c, u);
    int64_t sport = (word >> 48) & 0xFFFF, dport = (word >> 32) & 0xFFFF, length = (word >> 16) & 0xFFFF;
    put(c, D_SPORT, i, sport);
    put(c, D_DPORT, i, dport);
    if (length < 8 || u + length > p->ipend) {
        c->ok[i] = 0;
        return;
    }
    if (u + length < p->end)
        p->end = u + length;
    uint8_t to = c->ports[dport], from = c->ports[sport];
    if (to & P_GENEVE)
        geneve(c, p, u + 8);
    else if (to & P_GPE)
        vxlan(c, p, u + 8, 1);
    else if (to & P_VXLAN)
        vxlan(c, p, u + 8, 0);
    else if ((to | from) & P_L2TP)
        l2tp_udp(c, p, u + 8);
    else if ((to | from) & P_REG_UDP)
        c->ok[i] = 0;
}

static void stt(Ctx *c, Pkt *p)
{
    Py_ssize_t i = p->i;
    int64_t t = p->l4, e = p->end;
    if (t + 4 > e)
        return;
    int64_t sport = g16(c, t), dport = g16(c, t + 2);
    put(c, D_SPORT, i, sport);
    put(c, D_DPORT, i, dport);
    if (!(c->ports[dport] & P_STT)) {
        if ((c->ports[dport] | c->ports[sport]) & P_REG_TCP)
            c->ok[i] = 0;
        return;
    }
    c->kind[i] = (int8_t)c->k.k_stt;
    int64_t doff = (g8(c, t + 12) >> 4) * 4;
    if (c->in_order || t + 20 > e || doff < 20 || t + doff > e) {
        c->ok[i] = 0;
        return;
    }
    if (g16(c, t + 6) != 0) /* a later segment: its frame's STT header is elsewhere */
        return;
    int64_t hdr = t + doff;
    if (hdr + c->k.stt_hdr_len > e || g8(c, hdr) != 0) {
        c->ok[i] = 0;
        return;
    }
    identify(c, p, c->k.k_stt, (g32(c, hdr + 8) << 32) | g32(c, hdr + 12));
    inner(c, p, hdr + c->k.stt_hdr_len, 0);
}

static void nvgre(Ctx *c, Pkt *p)
{
    int64_t t = p->l4;
    int64_t flags = g16(c, t), proto = g16(c, t + 2);
    /* RFC 7637's exact header (K=1, C=R=S=0, version 0, TEB) here; any other GRE: the decoder */
    if ((flags & c->k.gre_mask) != c->k.gre_k || proto != c->k.eth_teb || t + 8 > p->end) {
        c->ok[p->i] = 0;
        return;
    }
    uint64_t key = g32(c, t + 4);
    identify(c, p, c->k.k_nvgre, key >> 8);
    put(c, D_FLOW, p->i, (int64_t)(key & 0xFF));
    inner(c, p, t + 8, 0);
}

/* L2TPv3 over IP (RFC 3931 §4.1.1.1) */
static void l2tp_ip(Ctx *c, Pkt *p)
{
    Py_ssize_t i = p->i;
    int64_t t = p->l4, e = p->end;
    c->kind[i] = (int8_t)c->k.k_l2tpv3;
    if (t + 4 > e) {
        c->ok[i] = 0;
        return;
    }
    uint64_t session = g32(c, t);
    put(c, D_CONTROL, i, session != 0 ? 0 : 1); /* Session ID 0: a control message */
    if (session == 0) {
        if (t + 16 > e)
            c->ok[i] = 0;
        return;
    }
    identify(c, p, c->k.k_l2tpv3, session);
    inner(c, p, t + 4 + c->l2tp_skip, 0);
}

/* -- link and outer IP (_link, _outer_vlans, _outer_ipv4, _outer_ipv6, _ip_kinds) ------------- */
static int link_layer(Ctx *c, Pkt *p, int64_t start, int64_t linktype)
{
    Py_ssize_t i = p->i;
    int64_t e = p->end;
    const Link *link = NULL;
    for (int j = 0; j < c->nlinks; j++)
        if (c->links[j].linktype == linktype)
            link = &c->links[j];
    if (link == NULL)
        return 0; /* loopback, or a link type the decoder skips */
    if (link->type_at < 0) {
        int64_t v = g8(c, start) >> 4;
        c->l3[i] = start;
        if (!(start < e && (v == 4 || v == 6)))
            return 0;
        return v == 4 ? 4 : 6;
    }
    int good = start + link->hlen <= e;
    int64_t et = g16(c, start + link->type_at), l3 = start + link->hlen;
    for (int depth = 1; depth <= 2 && is_tpid(c, et); depth++) {
        put(c, depth == 1 ? D_VLAN1 : D_VLAN2, i, g16(c, l3) & 0x0FFF);
        put(c, D_VLAN_N, i, depth);
        good = good && l3 + 4 <= e;
        et = g16(c, l3 + 2);
        l3 += 4;
    }
    c->l3[i] = l3;
    if (!good || is_tpid(c, et))
        return 0;
    return et == c->k.eth_ip ? 4 : et == c->k.eth_ipv6 ? 6 : -1;
}

/* The outer IP header at L3: 0 when the packet goes to the decoder. */
static int outer_ip(Ctx *c, Pkt *p, int64_t l3, int version)
{
    int64_t e = p->end;
    if (version == 4) {
        uint64_t word = g64(c, l3);
        int64_t ver = (word >> 60) & 0x0F, ihl = ((word >> 56) & 0x0F) * 4, tot = (word >> 32) & 0xFFFF;
        /* Total Length 0 (BIG TCP) and anything the decoder would complain of: to the decoder */
        if (l3 + 20 > e || ver != 4 || ihl < 20 || l3 + ihl > e || tot < ihl)
            return 0;
        p->ipend = l3 + tot;
        p->proto = g8(c, l3 + 9);
        p->first = (word & 0x1FFF) == 0;
        p->l4 = l3 + ihl;
    } else {
        int64_t nh = g8(c, l3 + 6), plen = g16(c, l3 + 4);
        if (l3 + 40 > e || (g8(c, l3) >> 4) != 6 || (c->protos[nh] & IP_EXT) || plen == 0)
            return 0;
        p->ipend = l3 + 40 + plen;
        p->proto = nh;
        p->first = 1;
        p->l4 = l3 + 40;
    }
    if (p->ipend < e)
        p->end = p->ipend;
    c->outer_ip[p->i] = (int8_t)version;
    return 1;
}

static void packet(Ctx *c, Py_ssize_t i, int64_t start, int64_t caplen, int64_t linktype)
{
    if (start < 0 || caplen < 0 || start > c->L || caplen > c->L - start) {
        c->ok[i] = 0; /* not a packet of this buffer (no reader makes one): the decoder says what it is */
        return;
    }
    Pkt p = {i, start + caplen, 0, 0, -1, 0, c->opts[0].len, c->data_len};
    int version = link_layer(c, &p, start, linktype);
    if (version == 0) {
        c->ok[i] = 0;
        return;
    }
    if (version < 0)
        return; /* not IP: no tunnel */
    if (!outer_ip(c, &p, c->l3[i], version)) {
        c->ok[i] = 0;
        return;
    }
    if (!p.first)
        return;
    if (c->protos[p.proto] & IP_REGISTERED)
        c->ok[i] = 0;
    else if (p.proto == c->k.udp)
        udp(c, &p);
    else if (p.proto == c->k.gre)
        nvgre(c, &p);
    else if (p.proto == c->k.l2tp)
        l2tp_ip(c, &p);
    else if (p.proto == c->k.tcp)
        stt(c, &p);
    if (!c->ok[i]) { /* the decoder reads this packet's options */
        for (int col = 0; col < 5; col++)
            c->opts[col].len = p.opt_mark;
        c->data_len = p.data_mark;
    }
}

/* Ask for the first two cache lines of packet I (OFF: data offsets) ahead of its turn: the
 * pass waits on memory, a packet at a time, unless the next ones are on their way. */
static inline void prefetch(const Ctx *c, const int64_t *off, Py_ssize_t i, Py_ssize_t n)
{
    if (i < n && off[i] >= 0 && off[i] + 128 <= c->L) {
        __builtin_prefetch(c->B + off[i]);
        __builtin_prefetch(c->B + off[i] + 64);
    }
}

/* -- the Python side ---------------------------------------------------------------------------- */
/* OBJ's bytes: at least NEED (exactly NEED if EXACT), aligned to WIDTH (1 or 8). */
static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t need, int exact, int width,
                      const char *what)
{
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) | PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len < need || (exact && view->len != need)) {
        PyErr_Format(PyExc_ValueError, "analyse: %s has %zd bytes, needs %zd", what, view->len, need);
        PyBuffer_Release(view);
        return -1;
    }
    if (width > 1 && (view->len % width || (uintptr_t)view->buf % width)) {
        PyErr_Format(PyExc_ValueError, "analyse: %s is not an aligned array of %d-byte items", what, width);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int parse_tables(Ctx *c, PyObject *links, PyObject *tpids, PyObject *consts)
{
    Py_ssize_t nl = PySequence_Size(links), nt = nl < 0 ? -1 : PySequence_Size(tpids);
    Py_ssize_t nc = nt < 0 ? -1 : PySequence_Size(consts);
    if (nc < 0)
        return -1;
    if (nl > MAX_LINKS || nt > MAX_TPIDS || nc != N_CONSTS) {
        PyErr_SetString(PyExc_ValueError, "analyse: too many link types or TPIDs, or not the constants");
        return -1;
    }
    c->nlinks = (int)nl;
    for (Py_ssize_t j = 0; j < nl; j++) {
        PyObject *item = PySequence_GetItem(links, j);
        if (item != NULL && !PyTuple_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "analyse: each link is a tuple (linktype, hlen, type_at)");
            Py_CLEAR(item);
        }
        int ok = item != NULL && PyArg_ParseTuple(item, "LLL", &c->links[j].linktype, &c->links[j].hlen,
                                                  &c->links[j].type_at);
        Py_XDECREF(item);
        if (!ok)
            return -1;
    }
    c->ntpids = (int)nt;
    int64_t *k = (int64_t *)&c->k;
    for (Py_ssize_t j = 0; j < nt + nc; j++) {
        PyObject *item = j < nt ? PySequence_GetItem(tpids, j) : PySequence_GetItem(consts, j - nt);
        long long value = item == NULL ? -1 : PyLong_AsLongLong(item);
        Py_XDECREF(item);
        if (value == -1 && PyErr_Occurred())
            return -1;
        if (j < nt)
            c->tpids[j] = value;
        else
            k[j - nt] = value;
    }
    return 0;
}

static PyObject *options_result(Ctx *c)
{
    PyObject *out = c->failed ? NULL : PyTuple_New(6);
    PyObject *data = out == NULL ? NULL : PyBytes_FromStringAndSize((const char *)c->data, c->data_len);
    PyMem_RawFree(c->data);
    c->data = NULL;
    if (data == NULL)
        Py_CLEAR(out);
    else
        PyTuple_SET_ITEM(out, 5, data);
    for (int col = 0; col < 5; col++) {
        PyObject *raw = NULL;
        if (out != NULL)
            raw = PyBytes_FromStringAndSize((const char *)c->opts[col].items,
                                            c->opts[col].len * (Py_ssize_t)sizeof(int64_t));
        PyMem_RawFree(c->opts[col].items);
        c->opts[col].items = NULL;
        if (out != NULL && raw == NULL)
            Py_CLEAR(out);
        if (out != NULL)
            PyTuple_SET_ITEM(out, col, raw);
    }
    if (out == NULL && !PyErr_Occurred())
        PyErr_NoMemory();
    return out;
}

PyDoc_STRVAR(analyse_doc,
"analyse(buf, data_off, caplen, linktype, links, tpids, consts, ports, protos,\n"
"        l2tp_skip, in_order, out, det) -> (opt_pkt, opt_class, opt_type, opt_len, opt_pos,\n"
"        opt_data)\n\n"
"scan_batch's numpy stages over every packet of a batch, compiled.  DATA_OFF,\n"
"CAPLEN, LINKTYPE: int64 per packet; LINKS: (linktype, header length, EtherType\n"
"offset or -1 for raw IP); CONSTS: scan_batch._c_constants(); PORTS: 65536\n"
"bytes and PROTOS: 256 bytes of flags.  OUT: the writable per-packet arrays ok,\n"
"kind, vni, has_vni, crit, oam, inner, outer_ip, l3 (filled as the stages fill\n"
"them, ok set to 1 first); DET: None, or 16 writable int64 rows of the detail\n"
"columns, already holding their defaults.  Returns the plain packets' options\n"
"as native int64 bytes, packet by packet in wire order, and (with DET; else empty)\n"
"their data bytes one after the other.");

static PyObject *analyse(PyObject *module, PyObject *args)
{
    PyObject *buf, *data_off, *caplen, *linktype, *links, *tpids, *consts, *ports, *protos, *out, *det;
    long long l2tp_skip;
    int in_order;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOLpOO:analyse", &buf, &data_off, &caplen, &linktype, &links, &tpids,
                          &consts, &ports, &protos, &l2tp_skip, &in_order, &out, &det))
        return NULL;
    Ctx c;
    memset(&c, 0, sizeof(c));
    c.l2tp_skip = l2tp_skip;
    c.in_order = in_order;
    if (parse_tables(&c, links, tpids, consts) < 0)
        return NULL;
    if (!PyTuple_Check(out) || PyTuple_GET_SIZE(out) != N_OUT) {
        PyErr_SetString(PyExc_TypeError, "analyse: out must be a tuple of 9 arrays");
        return NULL;
    }
    Py_buffer views[4 + N_OUT + 3];
    int got = 0;
    PyObject *result = NULL;
    int width[N_OUT] = {1, 1, 8, 1, 1, 1, 8, 1, 8};
    if (get_buffer(buf, &views[got], 0, 0, 0, 1, "buf") < 0)
        goto done;
    got++;
    if (get_buffer(data_off, &views[got], 0, 0, 0, 8, "data_off") < 0)
        goto done;
    c.n = views[got++].len / 8;
    if (get_buffer(caplen, &views[got], 0, c.n * 8, 1, 8, "caplen") < 0)
        goto done;
    got++;
    if (get_buffer(linktype, &views[got], 0, c.n * 8, 1, 8, "linktype") < 0)
        goto done;
    got++;
    for (int j = 0; j < N_OUT; j++) {
        if (get_buffer(PyTuple_GET_ITEM(out, j), &views[got], 1, c.n * width[j], 1, width[j], "an output") < 0)
            goto done;
        got++;
    }
    if (get_buffer(ports, &views[got], 0, 65536, 1, 1, "ports") < 0)
        goto done;
    got++;
    if (get_buffer(protos, &views[got], 0, 256, 1, 1, "protos") < 0)
        goto done;
    got++;
    if (det != Py_None) {
        if (get_buffer(det, &views[got], 1, N_DET * c.n * 8, 1, 8, "det") < 0)
            goto done;
        c.det = views[got++].buf;
    }
    c.B = views[0].buf;
    c.L = views[0].len;
    const int64_t *off = views[1].buf, *cap = views[2].buf, *lt = views[3].buf;
    c.ok = views[4].buf;
    c.kind = views[5].buf;
    c.vni = views[6].buf;
    c.has_vni = views[7].buf;
    c.crit = views[8].buf;
    c.oam = views[9].buf;
    c.inner = views[10].buf;
    c.outer_ip = views[11].buf;
    c.l3 = views[12].buf;
    c.ports = views[13].buf;
    c.protos = views[14].buf;
    for (Py_ssize_t i = 0; i < c.n && !c.failed; i++) {
        prefetch(&c, off, i + PREFETCH_AHEAD, c.n);
        c.ok[i] = 1;
        packet(&c, i, off[i], cap[i], lt[i]);
    }
    result = options_result(&c);
done:
    for (int j = 0; j < 5; j++)
        PyMem_RawFree(c.opts[j].items);
    PyMem_RawFree(c.data);
    while (got > 0)
        PyBuffer_Release(&views[--got]);
    return result;
}

/* -- address text (the columnar scan's address columns) ------------------------------------------ */
/* Each byte's decimal text, and its length (filled on the module's first use). */
static char octet_text[256][4];
static uint8_t octet_len[256];

static void fill_octets(void)
{
    for (int v = 0; v < 256; v++)
        octet_len[v] = (uint8_t)snprintf(octet_text[v], 4, "%d", v);
}

/* Dotted-quad text of the 4 bytes at A into OUT (room for 16 bytes); its length. */
static Py_ssize_t ipv4_text(const uint8_t *a, char *out)
{
    Py_ssize_t len = 0;
    for (int j = 0; j < 4; j++) {
        memcpy(out + len, octet_text[a[j]], 4); /* the spare bytes are overwritten next */
        len += octet_len[a[j]];
        out[len++] = '.';
    }
    return len - 1;
}

/* RFC 5952 text of the 16 bytes at A into OUT, as glibc's inet_ntop (socket.inet_ntop)
 * writes it: lowercase hexadecimal without leading zeros, the first longest run of two
 * or more zero groups as "::", and an IPv4-compatible or -mapped address (::a.b.c.d,
 * ::ffff:a.b.c.d; not ::1 and ::) with its last 32 bits dotted.  Its length. */
static Py_ssize_t ipv6_text(const uint8_t *a, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned words[8];
    int best = -1, best_len = 0, run = -1, run_len = 0;
    for (int j = 0; j < 8; j++) {
        words[j] = ((unsigned)a[2 * j] << 8) | a[2 * j + 1];
        if (words[j] == 0) {
            if (run < 0)
                run = j, run_len = 0;
            if (++run_len > best_len)
                best = run, best_len = run_len;
        } else
            run = -1;
    }
    if (best_len < 2)
        best = -1;
    Py_ssize_t len = 0;
    for (int j = 0; j < 8; j++) {
        if (best >= 0 && j >= best && j < best + best_len) {
            if (j == best)
                out[len++] = ':';
            continue;
        }
        if (j != 0)
            out[len++] = ':';
        if (j == 6 && best == 0 && (best_len == 6 || (best_len == 7 && words[7] != 1) || (best_len == 5 && words[5] == 0xffff)))
            return len + ipv4_text(a + 12, out + len);
        int started = 0;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned digit = (words[j] >> shift) & 0xF;
            if (digit || started || shift == 0) {
                out[len++] = hex[digit];
                started = 1;
            }
        }
    }
    if (best >= 0 && best + best_len == 8)
        out[len++] = ':';
    return len;
}

PyDoc_STRVAR(addresses_doc,
"addresses(buf, pos, width) -> (offsets, chars)\n\n"
"An Arrow string column's offsets (int32) and characters: for each item of POS\n"
"(int64), the IPv4 (WIDTH 4) or IPv6 (WIDTH 16) address at that offset of BUF as\n"
"text (socket.inet_ntop's), or nothing (WIDTH 0: a null).  What the columnar\n"
"scan's address dictionary builds otherwise (columnar._address_text).");

static PyObject *addresses(PyObject *module, PyObject *args)
{
    Py_buffer buf, pos, width;
    PyObject *result = NULL, *offsets = NULL, *chars = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*:addresses", &buf, &pos, &width))
        return NULL;
    Py_ssize_t n = pos.len / 8;
    const int64_t *at = pos.buf;
    const uint8_t *w = width.buf, *B = buf.buf;
    if (width.len != n || pos.len % 8 || (uintptr_t)pos.buf % 8) {
        PyErr_SetString(PyExc_ValueError, "addresses: POS must be aligned int64s, WIDTH one byte for each");
        goto done;
    }
    offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * 4);
    chars = PyBytes_FromStringAndSize(NULL, n * ADDRESS_ROOM + 4);
    if (offsets == NULL || chars == NULL)
        goto done;
    int32_t *off = (int32_t *)PyBytes_AS_STRING(offsets);
    char *out = PyBytes_AS_STRING(chars);
    Py_ssize_t len = 0;
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n && at[i + PREFETCH_AHEAD] >= 0 && at[i + PREFETCH_AHEAD] < buf.len)
            __builtin_prefetch(B + at[i + PREFETCH_AHEAD]);
        int64_t p = at[i];
        if (w[i] != 0 && (p < 0 || p > buf.len - w[i])) {
            PyErr_Format(PyExc_ValueError, "addresses: item %zd reads past the buffer", i);
            goto done;
        }
        if (w[i] == 4)
            len += ipv4_text(B + p, out + len);
        else if (w[i] == 16)
            len += ipv6_text(B + p, out + len);
        off[i + 1] = (int32_t)len;
    }
    if (_PyBytes_Resize(&chars, len) == 0)
        result = PyTuple_Pack(2, offsets, chars);
done:
    Py_XDECREF(offsets);
    Py_XDECREF(chars);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&pos);
    PyBuffer_Release(&width);
    return result;
}

static PyMethodDef batch_methods[] = {
    {"analyse", analyse, METH_VARARGS, analyse_doc},
    {"addresses", addresses, METH_VARARGS, addresses_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef batch_module = {
    PyModuleDef_HEAD_INIT,
    "scapy_geneve.capture._batch",
    "scan_batch's stages, compiled (optional: see capture/scan_batch.py).",
    -1,
    batch_methods,
};

PyMODINIT_FUNC PyInit__batch(void)
{
    fill_octets();
    return PyModule_Create(&batch_module);
}

/*
 * Thin C wrappers over DPDK for homa-dpdk: many DPDK calls are static inline
 * (rx/tx bursts, mbuf alloc/free/append) and most structs are large and
 * version-specific, so Rust sees only opaque pointers and these functions.
 * Every function returns a negative errno-style value on failure.
 */
#include <errno.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>

int homa_dpdk_eal_init(int argc, char **argv)
{
	int r = rte_eal_init(argc, argv);
	return r < 0 ? -rte_errno : r;
}

int homa_dpdk_eal_cleanup(void) { return rte_eal_cleanup(); }

const char *homa_dpdk_runtime_dir(void) { return rte_eal_get_runtime_dir(); }

int homa_dpdk_errno(void) { return rte_errno; }

const char *homa_dpdk_strerror(int e) { return rte_strerror(e); }

int homa_dpdk_thread_register(void) { return rte_thread_register(); }

void homa_dpdk_thread_unregister(void) { rte_thread_unregister(); }

struct rte_mempool *homa_dpdk_pool_create(const char *name, unsigned n, unsigned cache,
					  uint16_t data_room)
{
	return rte_pktmbuf_pool_create(name, n, cache, 0, data_room, (int)rte_socket_id());
}

void homa_dpdk_pool_free(struct rte_mempool *mp) { rte_mempool_free(mp); }

unsigned homa_dpdk_pool_in_use(const struct rte_mempool *mp)
{
	return rte_mempool_in_use_count(mp);
}

int homa_dpdk_port_by_name(const char *name, uint16_t *port)
{
	return rte_eth_dev_get_port_by_name(name, port);
}

int homa_dpdk_port_valid(uint16_t port) { return rte_eth_dev_is_valid_port(port); }

/* One rx and one tx queue, started, promiscuous (so that frames for our
 * address on shared-medium vdevs arrive; we filter by MAC and IP). */
int homa_dpdk_port_setup(uint16_t port, struct rte_mempool *mp, uint16_t nb_rxd,
			 uint16_t nb_txd, uint16_t mtu)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	int r;

	memset(&conf, 0, sizeof(conf));
	r = rte_eth_dev_info_get(port, &info);
	if (r < 0)
		return r;
	r = rte_eth_dev_configure(port, 1, 1, &conf);
	if (r < 0)
		return r;
	r = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (r < 0)
		return r;
	int socket = rte_eth_dev_socket_id(port);
	if (socket < 0)
		socket = (int)rte_socket_id();
	r = rte_eth_rx_queue_setup(port, 0, nb_rxd, (unsigned)socket, NULL, mp);
	if (r < 0)
		return r;
	r = rte_eth_tx_queue_setup(port, 0, nb_txd, (unsigned)socket, NULL);
	if (r < 0)
		return r;
	/* Not every vdev can set its MTU; the frames we send fit the default. */
	(void)rte_eth_dev_set_mtu(port, mtu);
	r = rte_eth_dev_start(port);
	if (r < 0)
		return r;
	(void)rte_eth_promiscuous_enable(port);
	return 0;
}

int homa_dpdk_port_mac(uint16_t port, uint8_t out[6])
{
	struct rte_ether_addr a;
	int r = rte_eth_macaddr_get(port, &a);
	if (r < 0)
		return r;
	memcpy(out, a.addr_bytes, 6);
	return 0;
}

/* Link state: 1 up, 0 down; speed in Mbit/s (0 if unknown). */
int homa_dpdk_port_link(uint16_t port, uint32_t *speed_mbps)
{
	struct rte_eth_link link;
	memset(&link, 0, sizeof(link));
	int r = rte_eth_link_get_nowait(port, &link);
	if (r < 0)
		return r;
	*speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
	return link.link_status ? 1 : 0;
}

/* NIC counters: ipackets, opackets, ibytes, obytes, imissed, ierrors,
 * oerrors, rx_nombuf. */
int homa_dpdk_port_stats(uint16_t port, uint64_t out[8])
{
	struct rte_eth_stats s;
	int r = rte_eth_stats_get(port, &s);
	if (r < 0)
		return r;
	out[0] = s.ipackets;
	out[1] = s.opackets;
	out[2] = s.ibytes;
	out[3] = s.obytes;
	out[4] = s.imissed;
	out[5] = s.ierrors;
	out[6] = s.oerrors;
	out[7] = s.rx_nombuf;
	return 0;
}

void homa_dpdk_port_close(uint16_t port)
{
	(void)rte_eth_dev_stop(port);
	(void)rte_eth_dev_close(port);
}

/* Two ring ports joined back to back: what one sends the other receives. */
int homa_dpdk_ring_pair(const char *name_a, const char *name_b, unsigned size,
			struct rte_ring **rings, uint16_t *port_a, uint16_t *port_b)
{
	char n[RTE_RING_NAMESIZE];
	int r;

	snprintf(n, sizeof(n), "%s_tx", name_a);
	rings[0] = rte_ring_create(n, size, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	snprintf(n, sizeof(n), "%s_tx", name_b);
	rings[1] = rte_ring_create(n, size, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (rings[0] == NULL || rings[1] == NULL) {
		r = -rte_errno;
		goto fail;
	}
	/* a receives what b transmits, and the other way round */
	r = rte_eth_from_rings(name_a, &rings[1], 1, &rings[0], 1, (unsigned)rte_socket_id());
	if (r < 0) {
		r = -rte_errno;
		goto fail;
	}
	*port_a = (uint16_t)r;
	r = rte_eth_from_rings(name_b, &rings[0], 1, &rings[1], 1, (unsigned)rte_socket_id());
	if (r < 0) {
		r = -rte_errno;
		(void)rte_eth_dev_close(*port_a);
		goto fail;
	}
	*port_b = (uint16_t)r;
	return 0;
fail:
	rte_ring_free(rings[0]);
	rte_ring_free(rings[1]);
	rings[0] = rings[1] = NULL;
	return r < 0 ? r : -EINVAL;
}

/* Frees the mbufs still in the ring, then the ring. */
void homa_dpdk_ring_free(struct rte_ring *r)
{
	void *m;
	if (r == NULL)
		return;
	while (rte_ring_dequeue(r, &m) == 0)
		rte_pktmbuf_free((struct rte_mbuf *)m);
	rte_ring_free(r);
}

uint16_t homa_dpdk_rx_burst(uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, 0, pkts, n);
}

uint16_t homa_dpdk_tx_burst(uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, 0, pkts, n);
}

struct rte_mbuf *homa_dpdk_mbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

void homa_dpdk_mbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

/* The first segment's data and its length; *segs is the segment count. */
const uint8_t *homa_dpdk_mbuf_data(const struct rte_mbuf *m, uint32_t *len, uint32_t *segs)
{
	*len = m->data_len;
	*segs = m->nb_segs;
	return rte_pktmbuf_mtod(m, const uint8_t *);
}

/* Grows the (empty, freshly allocated) mbuf by len bytes; NULL if it has
 * no room. */
uint8_t *homa_dpdk_mbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return (uint8_t *)rte_pktmbuf_append(m, len);
}

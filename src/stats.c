// SPDX-License-Identifier: MIT
/*
 * stats.c - statistics snapshots and errno names.
 */
#include <string.h>

#include "internal.h"

/* TRACE.md's keys, sorted, then the extra ones (printed only when named). */
const char *const gmem_stat_keys[] = {
	"collapses", "conversions", "eagain", "ebusy",
	"folios_1g", "folios_2m", "folios_4k",
	"guest_1g", "guest_2m", "guest_4k", "host_ptes",
	"iommu_1g", "iommu_2m", "iommu_4k", "meta_bytes", "pins",
	"pool_free", "pool_resv", "pool_retired", "pool_total",
	"shatters", "vmemmap_bytes", "zaps",
	"eopnotsupp", "guest_map_1g", "guest_map_2m", "guest_map_4k",
	"guest_flushes", "guest_unmap_1g", "guest_unmap_2m", "guest_unmap_4k",
	"host_faults", "iommu_flushes",
	"iommu_map_1g", "iommu_map_2m", "iommu_map_4k", "iommu_unmap_1g",
	"iommu_unmap_2m", "iommu_unmap_4k", "merge_1g", "merge_2m",
	"pin_wait_ns", "pool_returned", "split_1g", "split_2m",
	"tlb_flushes", "zeroed_bytes", "meta_peak_bytes", "vmemmap_peak_bytes",
	NULL
};
const unsigned int gmem_stat_nr_listed = 23;

#define KEY(name) { #name, offsetof(struct gmem_stats, name) }
static const struct {
	const char *name;
	size_t off;
} key_offsets[] = {
	KEY(collapses), KEY(conversions), KEY(eagain), KEY(ebusy),
	KEY(folios_1g), KEY(folios_2m), KEY(folios_4k),
	KEY(guest_1g), KEY(guest_2m), KEY(guest_4k), KEY(host_ptes),
	KEY(iommu_1g), KEY(iommu_2m), KEY(iommu_4k), KEY(meta_bytes),
	KEY(pins), KEY(pool_free), KEY(pool_resv), KEY(pool_retired),
	KEY(pool_total), KEY(shatters), KEY(vmemmap_bytes), KEY(zaps),
	KEY(eopnotsupp), KEY(pin_wait_ns), KEY(pool_returned),
	KEY(split_2m), KEY(split_1g), KEY(merge_2m), KEY(merge_1g),
	KEY(zeroed_bytes), KEY(tlb_flushes), KEY(host_faults),
	KEY(guest_map_4k), KEY(guest_map_2m), KEY(guest_map_1g),
	KEY(guest_unmap_4k), KEY(guest_unmap_2m), KEY(guest_unmap_1g),
	KEY(iommu_map_4k), KEY(iommu_map_2m), KEY(iommu_map_1g),
	KEY(iommu_unmap_4k), KEY(iommu_unmap_2m), KEY(iommu_unmap_1g),
	KEY(guest_flushes), KEY(iommu_flushes),
	KEY(meta_peak_bytes), KEY(vmemmap_peak_bytes),
};

int gmem_stat_get(const struct gmem_stats *s, const char *key, uint64_t *val)
{
	for (size_t i = 0; i < sizeof(key_offsets) / sizeof(key_offsets[0]); i++) {
		if (!strcmp(key, key_offsets[i].name)) {
			memcpy(val, (const char *)s + key_offsets[i].off,
			       sizeof(*val));
			return 0;
		}
	}
	return -ENOENT;
}

/* Kernel-equivalent vmemmap: 4 KiB per intact huge folio under HVO, one
 * 64-byte struct page per 4K folio. */
static uint64_t vmemmap_of(const uint64_t folios[3])
{
	return 4096 * (folios[GMAP_1G] + folios[GMAP_2M]) + 64 * folios[GMAP_4K];
}

/* Kernel events and map entries added and removed, to add up. */
static void add_events(struct gmem_stats *s, const uint64_t kev[NR_KEV],
		       const uint64_t ga[3], const uint64_t gr[3],
		       const uint64_t ia[3], const uint64_t ir[3],
		       uint64_t gflush, uint64_t iflush)
{
	s->guest_flushes += gflush;
	s->iommu_flushes += iflush;
	s->split_2m += kev[KEV_SPLIT_2M];
	s->split_1g += kev[KEV_SPLIT_1G];
	s->merge_2m += kev[KEV_MERGE_2M];
	s->merge_1g += kev[KEV_MERGE_1G];
	s->zeroed_bytes += kev[KEV_ZEROED];
	s->tlb_flushes += kev[KEV_TLB_FLUSHES];
	s->host_faults += kev[KEV_HOST_FAULTS];
	s->guest_map_4k += ga[GMAP_4K];
	s->guest_map_2m += ga[GMAP_2M];
	s->guest_map_1g += ga[GMAP_1G];
	s->guest_unmap_4k += gr[GMAP_4K];
	s->guest_unmap_2m += gr[GMAP_2M];
	s->guest_unmap_1g += gr[GMAP_1G];
	s->iommu_map_4k += ia[GMAP_4K];
	s->iommu_map_2m += ia[GMAP_2M];
	s->iommu_map_1g += ia[GMAP_1G];
	s->iommu_unmap_4k += ir[GMAP_4K];
	s->iommu_unmap_2m += ir[GMAP_2M];
	s->iommu_unmap_1g += ir[GMAP_1G];
}

/* Add a file's gauges and events (and with @counters its counters).  File
 * lock held. */
static void add_file(struct gmem_stats *s, struct gfile *f, bool counters)
{
	add_events(s, f->c.kev, f->guest.added, f->guest.removed,
		   f->iommu.added, f->iommu.removed, f->guest.flushes,
		   f->iommu.flushes);
	s->folios_4k += f->c.folios[GMAP_4K];
	s->folios_2m += f->c.folios[GMAP_2M];
	s->folios_1g += f->c.folios[GMAP_1G];
	s->meta_bytes += f->c.meta_bytes;
	s->vmemmap_bytes += vmemmap_of(f->c.folios);
	s->meta_peak_bytes += f->c.meta_peak;
	s->vmemmap_peak_bytes += f->c.vmemmap_peak;
	s->guest_4k += gmap_bytes(&f->guest, GMAP_4K);
	s->guest_2m += gmap_bytes(&f->guest, GMAP_2M);
	s->guest_1g += gmap_bytes(&f->guest, GMAP_1G);
	s->iommu_4k += gmap_bytes(&f->iommu, GMAP_4K);
	s->iommu_2m += gmap_bytes(&f->iommu, GMAP_2M);
	s->iommu_1g += gmap_bytes(&f->iommu, GMAP_1G);
	s->host_ptes += f->c.host_ptes;
	if (!counters)
		return;
	s->pins = file_pins(f);
	s->shatters = f->c.shatters;
	s->collapses = f->c.collapses;
	s->conversions = f->c.conversions;
	s->eagain = f->c.eagain;
	s->ebusy = f->c.ebusy;
	s->zaps = f->c.zaps;
	s->eopnotsupp = f->c.eopnotsupp;
	s->pool_returned = f->c.pool_returned;
	s->pin_wait_ns = f->c.pin_wait_ns;
}

/* Context: with @counters, files_lock (the lists of files). */
static void add_pool(struct gmem_stats *s, struct gpool *p, bool counters)
{
	pthread_mutex_lock(&p->lock);
	s->pool_total = p->total;
	s->pool_free = p->free;
	s->pool_resv = p->resv;
	s->pool_retired = p->retired;
	if (counters) {
		s->meta_bytes += p->detached_meta;
		s->vmemmap_bytes += 4096 * p->free;
		s->pins = atomic_load_explicit(&p->nr_pins,
					       memory_order_relaxed);
		/* fast-path pins are counted per file (closed ones too) */
		for (struct gfile *f = p->files; f; f = f->next)
			s->pins += (uint64_t)shard_sum(&f->fast_pins);
		for (struct gfile *f = p->zombies; f; f = f->next)
			s->pins += (uint64_t)shard_sum(&f->fast_pins);
		s->shatters = p->run.shatters;
		s->collapses = p->run.collapses;
		s->conversions = p->run.conversions;
		s->eagain = p->run.eagain;
		s->ebusy = p->run.ebusy;
		s->zaps = p->run.zaps;
		s->eopnotsupp = p->run.eopnotsupp;
		s->pool_returned = p->run.pool_returned;
		s->pin_wait_ns = p->run.pin_wait_ns;
		add_events(s, p->run.kev, p->run.guest_added,
			   p->run.guest_removed, p->run.iommu_added,
			   p->run.iommu_removed, p->run.guest_flushes,
			   p->run.iommu_flushes);
	}
	pthread_mutex_unlock(&p->lock);
}

/*
 * gmem_stats() - for a file, one snapshot: its file lock with the pool
 * lock inside it (a file's pages move to and from the pool only under
 * both), so its folios_* and the pool_* keys agree.  No invalidate lock:
 * a thread that holds a pin may ask while a conversion waits for it.
 *
 * Pool-wide, each open file's figures under its own lock, one file after
 * another, then the pool's: never two file locks at once, since a thread
 * holding one file's lock may be stopped in a view of another file (a
 * pointer into a view passed to a call), whose handler needs that file's
 * lock.  So each file's figures agree among themselves and the pool_*
 * keys and counters among themselves, but while other threads allocate or
 * give back pages the sums over files may differ from the pool_* keys by
 * what moved meanwhile.
 */
int gmem_stats(struct gmem_pool *pool, struct gmem_file *file,
	       struct gmem_stats *out)
{
	struct gpool *p = to_pool(pool);
	struct gfile *f;
	int ret = 0;

	if (!pool || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (file) {
		f = to_file(file);
		if (f->pool != p)
			return -EINVAL;
		pthread_mutex_lock(&f->lock);
		/* gen changes under the file lock (close) */
		if (f->closed || !file_handle_live(file)) {
			ret = -EBADF;
		} else {
			add_file(out, f, true);
			add_pool(out, p, false);
		}
		pthread_mutex_unlock(&f->lock);
		return ret;
	}
	pthread_mutex_lock(&p->files_lock);
	for (f = p->files; f; f = f->next) {
		pthread_mutex_lock(&f->lock);
		/* closed, not yet off the list: its structures are gone */
		if (!f->closed)
			add_file(out, f, false);
		pthread_mutex_unlock(&f->lock);
	}
	add_pool(out, p, true);
	pthread_mutex_unlock(&p->files_lock);
	return 0;
}

const char *gmem_errno_name(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EUCLEAN: return "EUCLEAN";
	case EHWPOISON: return "EHWPOISON";
	default: return "EUNKNOWN";
	}
}

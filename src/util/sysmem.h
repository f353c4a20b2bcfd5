/* Memory of this process and of the machine, from /proc (0 when unknown). */
#ifndef TFSWA_SYSMEM_H
#define TFSWA_SYSMEM_H
#include <stddef.h>

size_t tf_rss_bytes(void);      /* resident set size now (VmRSS) */
size_t tf_peak_rss_bytes(void); /* peak resident set size (VmHWM) */
size_t tf_mem_available(void);  /* MemAvailable of the machine */

#endif

/* A trivial collectd write plugin that only counts value lists: the floor
 * the side-by-side benchmark measures every other configuration against. */
#include "collectd.h"
#include "plugin.h"

static unsigned long long count;

static int null_write(const data_set_t *ds, const value_list_t *vl,
                      user_data_t *ud) {
  (void)ds; (void)vl; (void)ud;
  __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
  return 0;
}

static int null_shutdown(void) {
  INFO("null_writer: %llu value lists", count);
  return 0;
}

void module_register(void) {
  plugin_register_write("null_writer", null_write, NULL);
  plugin_register_shutdown("null_writer", null_shutdown);
}

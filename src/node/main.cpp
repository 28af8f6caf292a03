// gossip-kv: a Maelstrom node. Flags are parsed here (node/flags.h); everything else lives in
// gossip_kv_core, reached through its public headers only.
#include <csignal>
#include <cstdint>
#include <cstdio>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <CLI/CLI.hpp>

#include "gossip_kv/gossip_config.h"
#include "gossip_kv/runtime.h"
#include "gossip_kv/store.h"
#include "gossip_kv/version.h"
#include "node/flags.h"

int main(int argc, char** argv) {
  CLI::App app{"gossip-kv: a gossip-replicated, eventually consistent key-value store node for "
               "Maelstrom. Speaks the Maelstrom protocol on stdin/stdout; logs on stderr."};
  gossip_kv::NodeOptions options;
  gossip_kv::add_node_flags(app, options);
  gossip_kv::GossipConfig gossip;
  gossip_kv::add_gossip_flags(app, gossip);
  std::int64_t clock_offset_ms = 0;
  app.add_option("--clock-offset-ms", clock_offset_ms,
                 "run this node's clock ahead (or, negative, behind) the machine's, ms: for testing "
                 "last-writer-wins under clock skew")
      ->capture_default_str()->check(CLI::Range(std::int64_t{-3'600'000}, std::int64_t{3'600'000}));
  CLI11_PARSE(app, argc, argv);
  gossip_kv::set_wall_clock_offset_us(clock_offset_ms * 1000);

  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is reported by write(), not fatal
#if defined(__GLIBC__)
  // Blocks of 256 KiB and more (peer messages, burst-sized scratch) come from mmap and go back
  // when freed. glibc's default threshold rises each time such a block is freed, up to 32 MiB,
  // after which they come from the heap and leave it holed between long-lived entries, tables
  // and index nodes: 1M keys in a 3-node cluster settled at 121 to 152 bytes per key from run
  // to run, and at 116 with the threshold fixed (BENCHMARKS.md). Process-wide, so set here
  // and not in run_node, which tests embed. Its result is not checked: under a sanitizer's
  // allocator it is refused (0), which is expected and harmless (stderr stays clean for the
  // tests that check it).
  (void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
  auto make_engine = [&gossip](const std::string& self, const std::vector<std::string>& ids,
                               gossip_kv::Store& store, std::uint64_t seed)
      -> std::unique_ptr<gossip_kv::ReplicationEngine> {
    return gossip_kv::make_gossip_engine(gossip, self, ids, store, seed,
                                         gossip_kv::wall_clock_us());
  };
  return gossip_kv::run_node(options, make_engine, 0, 1);
}

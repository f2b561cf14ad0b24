// Fuzz target: arbitrary bytes as a snapshot file. Decoding must never crash; what decodes must
// re-encode to the same snapshot; and the snapshotter must load exactly what decodes and skip
// everything else.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/sim_file.h"
#include "snap/snapshotter.h"

namespace {

using namespace cairn;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "snap fuzz: property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto decoded = snap::decode_snapshot_file(bytes);
  if (decoded) {
    auto again = snap::decode_snapshot_file(snap::encode_snapshot_file(*decoded));
    if (!again || again->SerializeAsString() != decoded->SerializeAsString()) {
      violated("a decoded snapshot does not survive re-encoding");
    }
  } else if (decoded.error().code != snap::errc::corrupt) {
    violated("decode failed with a kind other than corrupt");
  }

  base::sim_file_system fs;
  if (!base::create_dirs(fs, "snap")) violated("setup");
  const std::string name =
      decoded ? snap::snapshot_file_name(decoded->metadata().term(), decoded->metadata().index())
              : snap::snapshot_file_name(1, 1);
  if (!base::write_file_atomically(fs, "snap/" + name, bytes)) violated("setup write");
  snap::snapshotter s(fs, "snap");
  auto loaded = s.load();
  if (decoded) {
    if (!loaded || loaded->SerializeAsString() != decoded->SerializeAsString()) {
      violated("an intact file does not load");
    }
  } else if (loaded || loaded.error().code != snap::errc::no_snapshot) {
    violated("a broken file was not skipped");
  }
  return 0;
}

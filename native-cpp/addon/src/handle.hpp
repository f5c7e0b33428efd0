// The handle bit layout of docs/raw-contract.md ("Handles"). Node-free, so the core tests can check it.
//
//   bit 52 ........ 45 | 44 .. 41 | 40 ........ 22 | 21 ......... 0
//         env (8)       | tag (4)  | generation(19) |  slot (22)
//   tag = backend << 2 | kind       backend: cpp = 1, rust = 2     kind: string = 1, subscription = 2, producer = 3
//
// A handle is a JS number (an integer below 2^53): it names a slot, it is not a pointer and cannot be dereferenced.
#pragma once

#include <cstdint>

namespace napi_ownership::handle {

inline constexpr unsigned kSlotBits = 22;
inline constexpr unsigned kGenerationBits = 19;
inline constexpr unsigned kTagBits = 4;
inline constexpr unsigned kEnvBits = 8;

inline constexpr unsigned kGenerationShift = kSlotBits;                    // 22
inline constexpr unsigned kTagShift = kGenerationShift + kGenerationBits;  // 41
inline constexpr unsigned kEnvShift = kTagShift + kTagBits;                // 45

inline constexpr std::uint64_t kLimit = std::uint64_t{1} << (kEnvShift + kEnvBits);  // 2^53
static_assert(kLimit == (std::uint64_t{1} << 53), "a handle must stay an exact JS number");

inline constexpr std::uint32_t kSlotCount = std::uint32_t{1} << kSlotBits;  // slots per table
// Generations run 1 .. 2^19 - 2; a slot whose generation reaches 2^19 - 1 is retired.
inline constexpr std::uint32_t kRetiredGeneration = (std::uint32_t{1} << kGenerationBits) - 1;
inline constexpr std::uint32_t kMaxEnvId = (std::uint32_t{1} << kEnvBits) - 1;  // env ids run 1 .. 255

enum class Backend : std::uint32_t { kCpp = 1, kRust = 2 };
enum class Kind : std::uint32_t { kString = 1, kSubscription = 2, kProducer = 3 };

inline constexpr Backend kThisBackend = Backend::kCpp;
inline constexpr Backend kOtherBackend = Backend::kRust;

constexpr const char* backend_name(Backend b) noexcept { return b == Backend::kCpp ? "cpp" : "rust"; }
constexpr const char* kind_name(Kind k) noexcept {
  return k == Kind::kString ? "string" : k == Kind::kSubscription ? "subscription" : "producer";
}

struct Fields {
  std::uint32_t env;
  std::uint32_t backend;  // raw bits: may be neither addon's in a forged handle
  std::uint32_t kind;     // raw bits
  std::uint32_t generation;
  std::uint32_t slot;
};

constexpr std::uint64_t mask(unsigned bits) noexcept { return (std::uint64_t{1} << bits) - 1; }

constexpr std::uint64_t encode(std::uint32_t env, Backend backend, Kind kind, std::uint32_t generation,
                               std::uint32_t slot) noexcept {
  const std::uint64_t tag = (static_cast<std::uint64_t>(backend) << 2) | static_cast<std::uint64_t>(kind);
  return ((env & mask(kEnvBits)) << kEnvShift) | ((tag & mask(kTagBits)) << kTagShift) |
         ((generation & mask(kGenerationBits)) << kGenerationShift) | (slot & mask(kSlotBits));
}

constexpr Fields decode(std::uint64_t h) noexcept {
  const auto tag = static_cast<std::uint32_t>((h >> kTagShift) & mask(kTagBits));
  return Fields{
      static_cast<std::uint32_t>((h >> kEnvShift) & mask(kEnvBits)),
      tag >> 2,
      tag & 3u,
      static_cast<std::uint32_t>((h >> kGenerationShift) & mask(kGenerationBits)),
      static_cast<std::uint32_t>(h & mask(kSlotBits)),
  };
}

static_assert(decode(encode(255, Backend::kCpp, Kind::kString, kRetiredGeneration - 1, kSlotCount - 1)).env == 255);
static_assert(encode(255, Backend::kRust, Kind::kProducer, kRetiredGeneration, kSlotCount - 1) < kLimit);
static_assert(decode(encode(7, Backend::kCpp, Kind::kProducer, 3, 9)).kind == 3);
static_assert(encode(1, Backend::kCpp, Kind::kString, 1, 0) ==
              (std::uint64_t{1} << 45 | std::uint64_t{0b0101} << 41 | std::uint64_t{1} << 22));

}  // namespace napi_ownership::handle

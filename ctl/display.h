// etcdctl's output formats for the everyday commands: simple, json, fields and protobuf
// (etcdctl/ctlv3/command/printer_*.go of 3.4), so scripts that parse etcdctl's output parse
// cairnctl's. The json printer is Go's encoding/json over etcd's generated structs: fields in
// declaration order named by their proto names, zero values left out, bytes in base64, 64-bit
// numbers as numbers.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <string>

#include "etcdserverpb/rpc.pb.h"

namespace cairn::ctl {

// Go's encoding/json of a gogo-generated message (omitempty everywhere, oneofs as a
// capitalised wrapper field).
std::string go_json(const google::protobuf::Message& m);
// Go's strconv.Quote of bytes.
std::string go_quote(const std::string& s);

class display {
 public:
  display(std::string format, bool hex, bool value_only = false)
      : format_(std::move(format)), hex_(hex), value_only_(value_only) {}

  void get(const etcdserverpb::RangeResponse& r) const;
  void put(const etcdserverpb::PutResponse& r) const;
  void del(const etcdserverpb::DeleteRangeResponse& r) const;
  void txn(const etcdserverpb::TxnResponse& r) const;
  void watch(const etcdserverpb::WatchResponse& r) const;
  void grant(const etcdserverpb::LeaseGrantResponse& r) const;
  void revoke(std::int64_t id, const etcdserverpb::LeaseRevokeResponse& r) const;
  void keep_alive(const etcdserverpb::LeaseKeepAliveResponse& r) const;
  void time_to_live(const etcdserverpb::LeaseTimeToLiveResponse& r, bool keys) const;
  void leases(const etcdserverpb::LeaseLeasesResponse& r) const;

  bool simple() const { return format_ == "simple"; }

 private:
  void kv(const mvccpb::KeyValue& kv) const;
  std::string bytes(const std::string& b) const;

  std::string format_;
  bool hex_;
  bool value_only_;
};

}  // namespace cairn::ctl

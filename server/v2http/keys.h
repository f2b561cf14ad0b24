// v2http/keys.h: etcd's v2 keys API over HTTP (/v2/keys), served on the client URLs' HTTP side
// when --enable-v2 is set, as etcd 3.4's keysHandler:
//   GET     read (local; quorum=true goes through raft), or with wait=true a watch: long poll
//           for one event, or stream=true for every event, from waitIndex (the history) or now;
//   PUT     set / create (prevExist=false) / update (prevExist=true) / compareAndSwap
//           (prevValue, prevIndex); dir=true, ttl=, refresh=true;
//   POST    an in-order key under the path;
//   DELETE  delete (dir=true, recursive=true) / compareAndDelete (prevValue, prevIndex).
// Parameters come from the query and, for PUT and POST, from a form body; bad ones answer
// etcd's 2xx error codes with etcd's causes. Answers carry X-Etcd-Index, X-Raft-Index (the
// committed index), X-Raft-Term and X-Etcd-Cluster-Id; a create (or a set of a new key) is 201.
// Bodies are etcd's JSON plus a newline.
#pragma once

#include <functional>
#include <string>

#include "etcdserver/server.h"
#include "http/router.h"

namespace cairn::v2http {

void install_keys(http::router& r, etcdserver::server& node);

// /v2/stats/store (the v2 store's counters), /v2/stats/self (this member, its view of the
// leader, raft append counters), /v2/members (list; add with {"peerURLs": [...]}; DELETE
// /v2/members/<hex id>; /v2/members/leader), with etcd's JSON and status codes.
// `followers` gives /v2/stats/leader's "followers" object (on the leader; followers answer 403
// "not current leader"); null: that path is not served.
void install_stats_and_members(http::router& r, etcdserver::server& node,
                               std::function<std::string()> followers = nullptr);

}  // namespace cairn::v2http

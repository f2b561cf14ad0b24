#include "descriptor_diff.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include <google/protobuf/compiler/parser.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace cairn::proto {

namespace pb = google::protobuf;

namespace {

class parse_errors : public pb::io::ErrorCollector {
 public:
  parse_errors(const std::string& file, std::string& out) : file_(file), out_(out) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    out_ += file_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " +
            message + "\n";
  }

 private:
  const std::string& file_;
  std::string& out_;
};

class build_errors : public pb::DescriptorPool::ErrorCollector {
 public:
  explicit build_errors(std::string& out) : out_(out) {}
  void AddError(const std::string& filename, const std::string& element_name,
                const pb::Message* /*descriptor*/, ErrorLocation /*location*/,
                const std::string& message) override {
    out_ += filename + ": " + element_name + ": " + message + "\n";
  }

 private:
  std::string& out_;
};

// Custom options are the ones whose name has a parenthesized (extension) part. The parser keeps
// every option uninterpreted; the pool interprets them at build time, which for a custom option
// needs the extension's definition, so those go.
template <typename Options>
void drop_custom_options(Options& options) {
  pb::RepeatedPtrField<pb::UninterpretedOption> kept;
  for (auto& option : *options.mutable_uninterpreted_option()) {
    const bool custom = std::ranges::any_of(
        option.name(), [](const pb::UninterpretedOption::NamePart& p) { return p.is_extension(); });
    if (!custom) kept.Add()->Swap(&option);
  }
  options.mutable_uninterpreted_option()->Swap(&kept);
}

template <typename Proto>
void strip_options_of(Proto& proto) {
  if (proto.has_options()) drop_custom_options(*proto.mutable_options());
}

void strip_enum(pb::EnumDescriptorProto& e) {
  strip_options_of(e);
  for (auto& value : *e.mutable_value()) strip_options_of(value);
}

void strip_message(pb::DescriptorProto& m) {
  strip_options_of(m);
  for (auto& field : *m.mutable_field()) strip_options_of(field);
  for (auto& field : *m.mutable_extension()) strip_options_of(field);
  for (auto& oneof : *m.mutable_oneof_decl()) strip_options_of(oneof);
  for (auto& range : *m.mutable_extension_range()) strip_options_of(range);
  for (auto& nested : *m.mutable_nested_type()) strip_message(nested);
  for (auto& e : *m.mutable_enum_type()) strip_enum(e);
}

void strip_file(pb::FileDescriptorProto& f) {
  strip_options_of(f);
  for (auto& m : *f.mutable_message_type()) strip_message(m);
  for (auto& e : *f.mutable_enum_type()) strip_enum(e);
  for (auto& field : *f.mutable_extension()) strip_options_of(field);
  for (auto& s : *f.mutable_service()) {
    strip_options_of(s);
    for (auto& method : *s.mutable_method()) strip_options_of(method);
  }
}

// Removes the named imports, keeping the public/weak markers of the rest pointing right.
void drop_imports(pb::FileDescriptorProto& f, const std::set<std::string>& dropped) {
  const std::vector<std::string> deps(f.dependency().begin(), f.dependency().end());
  const std::set<int> pub(f.public_dependency().begin(), f.public_dependency().end());
  const std::set<int> weak(f.weak_dependency().begin(), f.weak_dependency().end());
  f.clear_dependency();
  f.clear_public_dependency();
  f.clear_weak_dependency();
  for (int i = 0; i < static_cast<int>(deps.size()); ++i) {
    if (dropped.contains(deps[i])) continue;
    const int at = f.dependency_size();
    f.add_dependency(deps[i]);
    if (pub.contains(i)) f.add_public_dependency(at);
    if (weak.contains(i)) f.add_weak_dependency(at);
  }
}

const char* label_name(const pb::FieldDescriptor& f) {
  switch (f.label()) {
    case pb::FieldDescriptor::LABEL_OPTIONAL:
      return "optional";
    case pb::FieldDescriptor::LABEL_REQUIRED:
      return "required";
    case pb::FieldDescriptor::LABEL_REPEATED:
      return "repeated";
  }
  return "?";
}

std::string type_name_of(const pb::FieldDescriptor& f) {
  if (f.message_type() != nullptr) return f.message_type()->full_name();
  if (f.enum_type() != nullptr) return f.enum_type()->full_name();
  return "(none)";
}

std::string oneof_of(const pb::FieldDescriptor& f) {
  const pb::OneofDescriptor* o = f.real_containing_oneof();
  return o == nullptr ? "(none)" : o->name();
}

std::string_view yes_no(bool b) { return b ? "yes" : "no"; }

std::string text(int i) { return std::to_string(i); }
std::string text(std::string_view s) { return std::string(s); }

// Top-level elements of a set of files, by full name.
struct top_level {
  std::map<std::string, const pb::Descriptor*> messages;
  std::map<std::string, const pb::EnumDescriptor*> enums;
  std::map<std::string, const pb::ServiceDescriptor*> services;
};

top_level collect(std::span<const pb::FileDescriptor* const> files) {
  top_level t;
  for (const pb::FileDescriptor* f : files) {
    for (int i = 0; i < f->message_type_count(); ++i) {
      t.messages.emplace(f->message_type(i)->full_name(), f->message_type(i));
    }
    for (int i = 0; i < f->enum_type_count(); ++i) {
      t.enums.emplace(f->enum_type(i)->full_name(), f->enum_type(i));
    }
    for (int i = 0; i < f->service_count(); ++i) {
      t.services.emplace(f->service(i)->full_name(), f->service(i));
    }
  }
  return t;
}

class differ {
 public:
  explicit differ(const allow_list& allowed) : allowed_(allowed) {}

  std::vector<std::string> run(std::span<const pb::FileDescriptor* const> reference,
                               std::span<const pb::FileDescriptor* const> ours) {
    const top_level ref = collect(reference);
    const top_level our = collect(ours);
    match(ref.messages, our.messages, "message",
          [this](const pb::Descriptor& r, const pb::Descriptor& o) {
            syntax(r.full_name(), *r.file(), *o.file());
            message(r, o);
          });
    match(ref.enums, our.enums, "enum",
          [this](const pb::EnumDescriptor& r, const pb::EnumDescriptor& o) {
            syntax(r.full_name(), *r.file(), *o.file());
            enumeration(r, o);
          });
    match(ref.services, our.services, "service",
          [this](const pb::ServiceDescriptor& r, const pb::ServiceDescriptor& o) {
            syntax(r.full_name(), *r.file(), *o.file());
            service(r, o);
          });
    for (const auto& [name, reason] : allowed_) {
      if (!used_.contains(name)) {
        report(name + ": allow-list entry (" + reason + ") matches nothing extra in ours");
      }
    }
    return std::move(out_);
  }

 private:
  void report(std::string line) { out_.push_back(std::move(line)); }

  void missing(std::string_view kind, const std::string& name) {
    report(name + ": " + std::string(kind) + " missing from ours");
  }

  void extra(std::string_view kind, const std::string& name) {
    if (allowed_.contains(name)) {
      used_.insert(name);
    } else {
      report(name + ": " + std::string(kind) + " in ours only, and not in the allow-list");
    }
  }

  template <typename T>
  void differs(const std::string& name, std::string_view what, const T& ref, const T& ours) {
    if (ref != ours) {
      report(name + ": " + std::string(what) + " is " + text(ref) + " in the reference, " +
             text(ours) + " in ours");
    }
  }

  // Pairs elements by full name: compares pairs, reports the unpaired.
  template <typename D, typename Compare>
  void match(const std::map<std::string, const D*>& ref,
             const std::map<std::string, const D*>& ours, std::string_view kind, Compare compare) {
    for (const auto& [name, r] : ref) {
      const auto it = ours.find(name);
      if (it == ours.end()) {
        missing(kind, name);
      } else {
        compare(*r, *it->second);
      }
    }
    for (const auto& [name, o] : ours) {
      if (!ref.contains(name)) extra(kind, name);
    }
  }

  void syntax(const std::string& name, const pb::FileDescriptor& ref,
              const pb::FileDescriptor& ours) {
    differs(name, "syntax", std::string_view(pb::FileDescriptor::SyntaxName(ref.syntax())),
            std::string_view(pb::FileDescriptor::SyntaxName(ours.syntax())));
  }

  void message(const pb::Descriptor& ref, const pb::Descriptor& ours) {
    std::map<std::string, const pb::FieldDescriptor*> rf, of;
    for (int i = 0; i < ref.field_count(); ++i) rf.emplace(ref.field(i)->full_name(), ref.field(i));
    for (int i = 0; i < ours.field_count(); ++i) {
      of.emplace(ours.field(i)->full_name(), ours.field(i));
    }
    match(rf, of, "field",
          [this](const pb::FieldDescriptor& r, const pb::FieldDescriptor& o) { field(r, o); });

    std::map<std::string, const pb::Descriptor*> rn, on;
    for (int i = 0; i < ref.nested_type_count(); ++i) {
      rn.emplace(ref.nested_type(i)->full_name(), ref.nested_type(i));
    }
    for (int i = 0; i < ours.nested_type_count(); ++i) {
      on.emplace(ours.nested_type(i)->full_name(), ours.nested_type(i));
    }
    match(rn, on, "message",
          [this](const pb::Descriptor& r, const pb::Descriptor& o) { message(r, o); });

    std::map<std::string, const pb::EnumDescriptor*> re, oe;
    for (int i = 0; i < ref.enum_type_count(); ++i) {
      re.emplace(ref.enum_type(i)->full_name(), ref.enum_type(i));
    }
    for (int i = 0; i < ours.enum_type_count(); ++i) {
      oe.emplace(ours.enum_type(i)->full_name(), ours.enum_type(i));
    }
    match(re, oe, "enum",
          [this](const pb::EnumDescriptor& r, const pb::EnumDescriptor& o) { enumeration(r, o); });
  }

  void field(const pb::FieldDescriptor& ref, const pb::FieldDescriptor& ours) {
    const std::string& name = ref.full_name();
    differs(name, "number", ref.number(), ours.number());
    differs(name, "type", std::string_view(ref.type_name()), std::string_view(ours.type_name()));
    differs(name, "label", std::string_view(label_name(ref)), std::string_view(label_name(ours)));
    differs(name, "type_name", type_name_of(ref), type_name_of(ours));
    differs(name, "oneof", oneof_of(ref), oneof_of(ours));
    differs(name, "presence", yes_no(ref.has_presence()), yes_no(ours.has_presence()));
    differs(name, "packed", yes_no(ref.is_packed()), yes_no(ours.is_packed()));
  }

  void enumeration(const pb::EnumDescriptor& ref, const pb::EnumDescriptor& ours) {
    // Value full names are scoped beside the enum in protobuf; name them inside it instead, so
    // a report says which enum the value belongs to.
    std::map<std::string, const pb::EnumValueDescriptor*> rv, ov;
    for (int i = 0; i < ref.value_count(); ++i) {
      rv.emplace(ref.full_name() + "." + ref.value(i)->name(), ref.value(i));
    }
    for (int i = 0; i < ours.value_count(); ++i) {
      ov.emplace(ours.full_name() + "." + ours.value(i)->name(), ours.value(i));
    }
    for (const auto& [name, r] : rv) {
      const auto it = ov.find(name);
      if (it == ov.end()) {
        missing("enum value", name);
      } else {
        differs(name, "number", r->number(), it->second->number());
      }
    }
    for (const auto& [name, o] : ov) {
      if (!rv.contains(name)) extra("enum value", name);
    }
  }

  void service(const pb::ServiceDescriptor& ref, const pb::ServiceDescriptor& ours) {
    std::map<std::string, const pb::MethodDescriptor*> rm, om;
    for (int i = 0; i < ref.method_count(); ++i)
      rm.emplace(ref.method(i)->full_name(), ref.method(i));
    for (int i = 0; i < ours.method_count(); ++i) {
      om.emplace(ours.method(i)->full_name(), ours.method(i));
    }
    match(rm, om, "method", [this](const pb::MethodDescriptor& r, const pb::MethodDescriptor& o) {
      const std::string& name = r.full_name();
      differs(name, "input type", r.input_type()->full_name(), o.input_type()->full_name());
      differs(name, "output type", r.output_type()->full_name(), o.output_type()->full_name());
      differs(name, "client_streaming", yes_no(r.client_streaming()), yes_no(o.client_streaming()));
      differs(name, "server_streaming", yes_no(r.server_streaming()), yes_no(o.server_streaming()));
    });
  }

  const allow_list& allowed_;
  std::set<std::string, std::less<>> used_;
  std::vector<std::string> out_;
};

}  // namespace

std::expected<std::vector<const pb::FileDescriptor*>, std::string> load_sources(
    const proto_sources& sources, const std::set<std::string>& dropped_imports,
    pb::DescriptorPool& pool) {
  std::string errors;
  std::map<std::string, pb::FileDescriptorProto> parsed;
  for (const auto& [name, text] : sources) {
    pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
    parse_errors collector(name, errors);
    pb::io::Tokenizer tokenizer(&input, &collector);
    pb::compiler::Parser parser;
    parser.RecordErrorsTo(&collector);
    pb::FileDescriptorProto proto;
    if (!parser.Parse(&tokenizer, &proto)) {
      if (errors.empty()) errors = name + ": parse failed\n";
      continue;
    }
    proto.set_name(name);
    strip_file(proto);
    drop_imports(proto, dropped_imports);
    parsed.emplace(name, std::move(proto));
  }
  if (!errors.empty()) return std::unexpected(errors);

  std::map<std::string, const pb::FileDescriptor*> built;
  std::set<std::string> in_progress;
  // Builds a file after the files it imports; an import outside `sources` is left for the pool
  // to resolve (and to report if it cannot).
  std::function<const pb::FileDescriptor*(const std::string&)> build =
      [&](const std::string& name) -> const pb::FileDescriptor* {
    if (const auto it = built.find(name); it != built.end()) return it->second;
    if (!in_progress.insert(name).second) {
      errors += name + ": import cycle\n";
      return nullptr;
    }
    const pb::FileDescriptorProto& proto = parsed.at(name);
    for (const std::string& dep : proto.dependency()) {
      if (parsed.contains(dep) && build(dep) == nullptr) return nullptr;
    }
    build_errors collector(errors);
    const pb::FileDescriptor* file = pool.BuildFileCollectingErrors(proto, &collector);
    if (file == nullptr && errors.empty()) errors = name + ": build failed\n";
    built.emplace(name, file);
    return file;
  };

  std::vector<const pb::FileDescriptor*> files;
  for (const auto& [name, text] : sources) {
    const pb::FileDescriptor* file = build(name);
    if (file == nullptr) return std::unexpected(errors);
    files.push_back(file);
  }
  return files;
}

std::vector<std::string> diff_descriptors(std::span<const pb::FileDescriptor* const> reference,
                                          std::span<const pb::FileDescriptor* const> ours,
                                          const allow_list& allowed) {
  return differ(allowed).run(reference, ours);
}

}  // namespace cairn::proto

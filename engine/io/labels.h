// Class labels: assets/imagenet_classes.txt (the 1000 ImageNet-1k names in index order, public data) or
// any text file with one name per line. Lookup by name ignores case and treats '_' as ' ', and accepts
// a few common aliases (e.g. "red panda" for index 387, whose list name is "lesser panda").
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace blr {

std::vector<std::string> load_labels(const std::string& path);  // throws InputError if unreadable/empty
// The 1000 ImageNet names from the installed or source assets folder.
const std::vector<std::string>& imagenet_labels();
std::string assets_dir();  // BLR_ASSETS_DIR env, else <source>/assets
// Index of `name` (or of a decimal index given as text) within labels; nullopt if unknown.
std::optional<int> find_label(const std::vector<std::string>& labels, const std::string& name);

}  // namespace blr

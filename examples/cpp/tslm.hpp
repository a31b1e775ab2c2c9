// tslm.hpp — header-only C++17 RAII wrappers over the tslm C API (include/tslm.h).
//
//   tslm::Model model("smollm2.tslm");
//   tslm::Session session(model);
//   session.append_text(model.chat({{"user", "Hello"}}), false);
//   auto text = session.generate(64, [](std::string_view piece) { std::cout << piece; return true; });
//
// Every failed call throws tslm::Error (status code + the library's message). Handles free
// themselves; objects are movable, not copyable. A Session must not outlive its Model.
#ifndef TSLM_HPP
#define TSLM_HPP

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tslm.h>

namespace tslm {

class Error : public std::runtime_error {
public:
    Error(int32_t status, const std::string &what)
        : std::runtime_error(what + ": " + tslm_status_name(status) + ": " + tslm_last_error()), status_(status) {}
    int32_t status() const noexcept { return status_; }

private:
    int32_t status_;
};

inline void check(int32_t status, const char *what) {
    if (status != TSLM_OK) throw Error(status, what);
}

/// Calls fill(buf, size, &len) twice: once for the size, once for the text.
template <typename Fill> std::string fetch_string(Fill fill, const char *what) {
    size_t len = 0;
    int32_t st = fill(nullptr, 0, &len);
    if (st == TSLM_OK) return std::string();
    if (st != TSLM_ERR_BUFFER_TOO_SMALL) throw Error(st, what);
    std::string s(len + 1, '\0');
    check(fill(s.data(), s.size(), &len), what);
    s.resize(len);
    return s;
}

class Model {
public:
    explicit Model(const std::string &path, tslm_model_params params = tslm_model_default_params()) {
        check(tslm_model_load(path.c_str(), params, &model_), "tslm_model_load");
    }
    ~Model() { tslm_model_free(model_); }
    Model(Model &&o) noexcept : model_(std::exchange(o.model_, nullptr)) {}
    Model &operator=(Model &&o) noexcept {
        if (this != &o) { tslm_model_free(model_); model_ = std::exchange(o.model_, nullptr); }
        return *this;
    }
    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;

    tslm_model *get() const noexcept { return model_; }
    int32_t kind() const { return tslm_model_kind(model_); }
    std::string architecture() const { return tslm_model_architecture(model_); }
    int32_t context_length() const { return tslm_model_context_length(model_); }
    int32_t vocab_size() const { return tslm_model_vocab_size(model_); }

    /// A metadata value as text; `fallback` when the key is absent.
    std::string meta(const std::string &key, const std::string &fallback) const {
        size_t len = 0;
        if (tslm_model_meta(model_, key.c_str(), nullptr, 0, &len) != TSLM_ERR_BUFFER_TOO_SMALL) return fallback;
        return fetch_string([&](char *b, size_t n, size_t *l) { return tslm_model_meta(model_, key.c_str(), b, n, l); },
                            "tslm_model_meta");
    }

    std::vector<int32_t> tokenize(const std::string &text, bool add_special = true, bool parse_special = true) const {
        size_t count = 0;
        int32_t st = tslm_tokenize(model_, text.c_str(), add_special, parse_special, nullptr, 0, &count);
        if (st != TSLM_OK && st != TSLM_ERR_BUFFER_TOO_SMALL) throw Error(st, "tslm_tokenize");
        std::vector<int32_t> ids(count);
        check(tslm_tokenize(model_, text.c_str(), add_special, parse_special, ids.data(), ids.size(), &count), "tslm_tokenize");
        return ids;
    }

    std::string detokenize(const std::vector<int32_t> &ids, bool skip_special = false) const {
        return fetch_string([&](char *b, size_t n, size_t *l) {
            return tslm_detokenize(model_, ids.data(), ids.size(), skip_special, b, n, l);
        }, "tslm_detokenize");
    }

    /// The model's chat template applied to {role, content} pairs, with the assistant prefix.
    std::string chat(const std::vector<std::pair<std::string, std::string>> &messages) const {
        std::vector<tslm_chat_message> m;
        for (const auto &[role, content] : messages) m.push_back({role.c_str(), content.c_str()});
        return fetch_string([&](char *b, size_t n, size_t *l) {
            return tslm_chat_apply_template(model_, m.data(), m.size(), b, n, l);
        }, "tslm_chat_apply_template");
    }

    /// What a forecasting model reads and writes (throws for other models).
    tslm_forecast_info forecast_info() const {
        tslm_forecast_info info{};
        check(tslm_model_forecast_info(model_, &info), "tslm_model_forecast_info");
        return info;
    }

    struct Forecast {
        std::vector<float> point;
        std::vector<float> quantiles;  // [q * horizon + t]
    };
    Forecast forecast(const std::vector<float> &history, int32_t horizon, const std::vector<float> &levels = {}) const {
        tslm_forecast_params p = tslm_forecast_default_params();
        p.horizon = horizon;
        p.quantile_levels = levels.empty() ? nullptr : levels.data();
        p.n_quantiles = static_cast<int32_t>(levels.size());
        Forecast f{std::vector<float>(horizon > 0 ? horizon : 0), std::vector<float>((horizon > 0 ? horizon : 0) * levels.size())};
        check(tslm_forecast(model_, history.data(), static_cast<int64_t>(history.size()), p, f.point.data(),
                            f.quantiles.empty() ? nullptr : f.quantiles.data()), "tslm_forecast");
        return f;
    }

private:
    tslm_model *model_ = nullptr;
};

class Session {
public:
    explicit Session(const Model &model, tslm_session_params params = tslm_session_default_params()) {
        check(tslm_session_new(model.get(), params, &session_), "tslm_session_new");
    }
    ~Session() { tslm_session_free(session_); }
    Session(Session &&o) noexcept : session_(std::exchange(o.session_, nullptr)) {}
    Session &operator=(Session &&o) noexcept {
        if (this != &o) { tslm_session_free(session_); session_ = std::exchange(o.session_, nullptr); }
        return *this;
    }
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;

    void reset() { check(tslm_session_reset(session_), "tslm_session_reset"); }
    int32_t position() const { return tslm_session_position(session_); }

    void append_text(const std::string &text, bool add_special = true) {
        check(tslm_session_append_text(session_, text.c_str(), add_special), "tslm_session_append_text");
    }

    /// `channels` series of values.size() / channels samples (channel-major); an empty
    /// description or preset means the model's.
    void append_series(const std::vector<float> &values, int32_t channels, const std::string &description = {},
                       const std::string &preset = {}) {
        int64_t length = channels > 0 ? static_cast<int64_t>(values.size()) / channels : 0;
        check(tslm_session_append_series(session_, values.data(), length, channels,
                                         description.empty() ? nullptr : description.c_str(),
                                         preset.empty() ? nullptr : preset.c_str()),
              "tslm_session_append_series");
    }

    /// A recording in the prompt the model was trained with (tslm_session_append_recording):
    /// channels of equal length, their names (e.g. CSV columns; empty: the model's), and a
    /// question replacing the model's text before the series (empty: the model's).
    void append_recording(const std::vector<std::vector<float>> &channels, const std::vector<std::string> &names = {},
                          const std::string &question = {}) {
        if (channels.empty()) throw Error(TSLM_ERR_INVALID_ARGUMENT, "append_recording: no channels");
        const size_t length = channels[0].size();
        std::vector<float> values;
        for (const auto &c : channels) {
            if (c.size() != length) throw Error(TSLM_ERR_INVALID_ARGUMENT, "append_recording: channels differ in length");
            values.insert(values.end(), c.begin(), c.end());
        }
        std::vector<const char *> name_ptrs;
        for (const auto &n : names) name_ptrs.push_back(n.c_str());
        check(tslm_session_append_recording(session_, values.data(), static_cast<int64_t>(length),
                                            static_cast<int32_t>(channels.size()),
                                            names.empty() ? nullptr : name_ptrs.data(),
                                            question.empty() ? nullptr : question.c_str()),
              "tslm_session_append_recording");
    }

    using PieceFn = std::function<bool(std::string_view)>;

    /// Generates, streaming pieces to on_piece (return false to stop); returns the whole text.
    std::string generate(tslm_generate_params params, PieceFn on_piece = {}) {
        auto trampoline = [](const char *piece, void *user) -> bool {
            auto *fn = static_cast<PieceFn *>(user);
            try {
                return (*fn)(piece);
            } catch (...) {
                return false;  // never let an exception cross the C library
            }
        };
        int32_t st = tslm_session_generate(session_, params, on_piece ? +trampoline : nullptr, &on_piece);
        if (st != TSLM_OK && st != TSLM_ERR_CANCELLED) throw Error(st, "tslm_session_generate");
        return last_text();
    }
    std::string generate(int32_t max_tokens, PieceFn on_piece = {}) {
        tslm_generate_params p = tslm_generate_default_params();
        p.max_tokens = max_tokens;
        return generate(p, std::move(on_piece));
    }

    std::string last_text() const {
        return fetch_string([&](char *b, size_t n, size_t *l) { return tslm_session_last_text(session_, b, n, l); },
                            "tslm_session_last_text");
    }
    std::string last_answer() const {
        return fetch_string([&](char *b, size_t n, size_t *l) { return tslm_session_last_answer(session_, b, n, l); },
                            "tslm_session_last_answer");
    }
    tslm_generation_stats last_stats() const {
        tslm_generation_stats s{};
        check(tslm_session_last_stats(session_, &s), "tslm_session_last_stats");
        return s;
    }

private:
    tslm_session *session_ = nullptr;
};

}  // namespace tslm

#endif  // TSLM_HPP

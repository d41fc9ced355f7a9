// Engine chat templates: the model's own template (GGUF `tokenizer.chat_template`)
// applied by llama.cpp's built-in formatter (llama_chat_apply_template detects the
// template family from its text; it does not run Jinja).
#include "engine.h"
#include "llama.h"

namespace pyllmattr {

std::string Engine::chat_template() const {
    check_open();
    const char * tmpl = llama_model_chat_template(model_, nullptr);
    return tmpl == nullptr ? std::string() : std::string(tmpl);
}

std::string Engine::apply_chat_template(const std::vector<ChatMessage> & messages, bool add_assistant,
                                        const std::string & tmpl) const {
    check_open();
    const std::string own = tmpl.empty() ? chat_template() : tmpl;
    if (own.empty()) {
        throw std::invalid_argument(
            "this model's GGUF file has no chat template (tokenizer.chat_template); "
            "use it without chat or pass a template");
    }
    std::vector<llama_chat_message> chat;
    size_t n_chars = 0;
    for (const auto & m : messages) {
        chat.push_back({m.role.c_str(), m.content.c_str()});
        n_chars += m.role.size() + m.content.size();
    }
    std::string out(2 * n_chars + 256, '\0');
    int32_t n = llama_chat_apply_template(own.c_str(), chat.data(), chat.size(), add_assistant,
                                          out.data(), static_cast<int32_t>(out.size()));
    if (n > static_cast<int32_t>(out.size())) {  // the buffer was too small: the size is known now
        out.resize(static_cast<size_t>(n));
        n = llama_chat_apply_template(own.c_str(), chat.data(), chat.size(), add_assistant,
                                      out.data(), static_cast<int32_t>(out.size()));
    }
    if (n < 0) {
        throw std::invalid_argument(
            "llama.cpp does not support this model's chat template (it applies a fixed list of "
            "template families, see llama.cpp's wiki 'Templates supported by "
            "llama_chat_apply_template'); pass a supported template name such as 'chatml'");
    }
    out.resize(static_cast<size_t>(n));
    return out;
}

}  // namespace pyllmattr

// The engine's vocabulary and GGUF metadata: tokenization, detokenization, token
// pieces, special tokens and model properties. Chat templates are in chat.cpp.
#include <limits>
#include <string>

#include "engine.h"
#include "llama.h"

namespace pyllmattr {

// ---------------------------------------------------------------- vocabulary

std::vector<Token> Engine::tokenize(const std::string & text, bool add_special, bool parse_special) const {
    check_open();
    const auto len = static_cast<int32_t>(text.size());
    std::vector<Token> tokens(text.size() + 8);
    int32_t n = llama_tokenize(vocab_, text.data(), len, tokens.data(),
                               static_cast<int32_t>(tokens.size()), add_special, parse_special);
    if (n < 0 && n != std::numeric_limits<int32_t>::min()) {
        tokens.resize(static_cast<size_t>(-n));
        n = llama_tokenize(vocab_, text.data(), len, tokens.data(),
                           static_cast<int32_t>(tokens.size()), add_special, parse_special);
    }
    if (n < 0) {
        throw std::invalid_argument("text is too long to tokenize");
    }
    tokens.resize(static_cast<size_t>(n));
    return tokens;
}

std::string Engine::detokenize(const std::vector<Token> & tokens, bool remove_special,
                               bool unparse_special) const {
    check_open();
    check_tokens(tokens, "detokenize");
    std::string text(tokens.size() * 8 + 16, '\0');
    const auto n_tok = static_cast<int32_t>(tokens.size());
    int32_t n = llama_detokenize(vocab_, tokens.data(), n_tok, text.data(),
                                 static_cast<int32_t>(text.size()), remove_special, unparse_special);
    if (n < 0) {
        text.resize(static_cast<size_t>(-n));
        n = llama_detokenize(vocab_, tokens.data(), n_tok, text.data(),
                             static_cast<int32_t>(text.size()), remove_special, unparse_special);
    }
    if (n < 0) {
        throw std::runtime_error("llama_detokenize failed with code " + std::to_string(n));
    }
    text.resize(static_cast<size_t>(n));
    return text;
}

std::string Engine::token_piece(Token token, bool special) const {
    check_open();
    check_tokens({token}, "token_piece");
    std::string piece(64, '\0');
    int32_t n = llama_token_to_piece(vocab_, token, piece.data(), static_cast<int32_t>(piece.size()), 0, special);
    if (n < 0) {  // the piece is -n bytes long
        piece.resize(static_cast<size_t>(-n));
        n = llama_token_to_piece(vocab_, token, piece.data(), static_cast<int32_t>(piece.size()), 0, special);
    }
    if (n < 0) {
        throw std::runtime_error("llama_token_to_piece failed with code " + std::to_string(n));
    }
    piece.resize(static_cast<size_t>(n));
    return piece;
}

void Engine::check_tokens(const std::vector<Token> & tokens, const std::string & what) const {
    const int32_t n_vocab = llama_vocab_n_tokens(vocab_);
    for (Token t : tokens) {
        if (t < 0 || t >= n_vocab) {
            throw std::invalid_argument(what + ": token id " + std::to_string(t) +
                                        " is outside this model's vocabulary [0, " +
                                        std::to_string(n_vocab) + ")");
        }
    }
}

// ---------------------------------------------------------------- metadata

// Every accessor checks that the model is open: after close() its pointers dangle.
int32_t Engine::n_vocab() const { check_open(); return llama_vocab_n_tokens(vocab_); }
int32_t Engine::n_ctx_train() const { check_open(); return llama_model_n_ctx_train(model_); }
int32_t Engine::n_swa() const { check_open(); return llama_model_n_swa(model_); }
bool Engine::is_recurrent() const {
    check_open();
    return llama_model_is_recurrent(model_) || llama_model_is_hybrid(model_);
}
Token Engine::bos() const { check_open(); return llama_vocab_bos(vocab_); }
Token Engine::eos() const { check_open(); return llama_vocab_eos(vocab_); }
bool Engine::add_bos() const { check_open(); return llama_vocab_get_add_bos(vocab_); }
bool Engine::is_eog(Token token) const {
    check_open();
    check_tokens({token}, "is_eog");
    return llama_vocab_is_eog(vocab_, token);
}

std::string Engine::meta(const std::string & key) const {
    check_open();
    const int32_t n = llama_model_meta_val_str(model_, key.c_str(), nullptr, 0);
    if (n < 0) {
        return "";
    }
    std::string value(static_cast<size_t>(n) + 1, '\0');
    llama_model_meta_val_str(model_, key.c_str(), value.data(), value.size());
    value.resize(static_cast<size_t>(n));
    return value;
}

std::string Engine::description() const {
    check_open();
    char buf[256];
    llama_model_desc(model_, buf, sizeof(buf));
    return buf;
}

}  // namespace pyllmattr

// generate.cpp — chat with a text model through tslm.hpp, streaming the reply.
//
//   c++ -std=c++17 -O2 -I. generate.cpp -o generate $(pkg-config --cflags --libs tslm)
//   ./generate smollm2.tslm "What is the capital of France?" [max_tokens]
#include <cstdlib>
#include <iostream>

#include "tslm.hpp"

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " MODEL.tslm PROMPT [MAX_TOKENS]\n";
        return 2;
    }
    try {
        tslm::Model model(argv[1]);
        tslm::Session session(model);
        session.append_text(model.chat({{"user", argv[2]}}), false);  // the template holds any BOS
        tslm_generate_params p = tslm_generate_default_params();
        p.max_tokens = argc > 3 ? std::atoi(argv[3]) : 64;
        const char *stops[] = {"<|im_end|>", "<|eot_id|>", "<end_of_turn>"};
        p.stop = stops;
        p.n_stop = 3;
        session.generate(p, [](std::string_view piece) {
            std::cout << piece << std::flush;
            return true;
        });
        auto s = session.last_stats();
        std::cout << "\n";
        std::cerr << "[" << s.prompt_tokens << " prompt tokens, " << s.generated_tokens << " generated]\n";
    } catch (const tslm::Error &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}

// explain_signal.cpp — ask an OpenTSLM model about a CSV recording in the prompt it was trained
// with (which its file carries; see ../c/explain_signal.c); prints the rationale as it streams,
// then the answer.
//
//   c++ -std=c++17 -O2 -I. explain_signal.cpp -o explain_signal $(pkg-config --cflags --libs tslm)
//   ./explain_signal basicmotions.tslm recording.csv ["question" [max_tokens]]
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "tslm.hpp"

struct Recording {
    std::vector<std::string> names;
    std::vector<std::vector<float>> channels;
};

static Recording read_csv(const std::string &path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    Recording r;
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (line.empty() || line == "\r") continue;
        std::vector<std::string> fields;
        std::stringstream ss(line);
        for (std::string f; std::getline(ss, f, ',');) fields.push_back(f);
        if (first) {
            r.channels.resize(fields.size());
            char *end = nullptr;
            std::strtod(fields[0].c_str(), &end);
            bool header = end == fields[0].c_str();
            for (size_t c = 0; c < fields.size(); c++) r.names.push_back(header ? fields[c] : "column " + std::to_string(c + 1));
            first = false;
            if (header) continue;
        }
        if (fields.size() != r.channels.size()) throw std::runtime_error(path + ": rows differ in column count");
        for (size_t c = 0; c < fields.size(); c++) r.channels[c].push_back(std::stof(fields[c]));
    }
    if (r.channels.empty() || r.channels[0].empty()) throw std::runtime_error(path + ": no data rows");
    return r;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " MODEL.tslm RECORDING.csv [QUESTION]\n";
        return 2;
    }
    try {
        Recording rec = read_csv(argv[2]);
        tslm::Model model(argv[1]);
        std::cout << "recording: " << argv[2] << ", " << rec.channels.size() << " channels x " << rec.channels[0].size() << " samples (";
        for (size_t c = 0; c < rec.names.size(); c++) std::cout << (c ? ", " : "") << rec.names[c];
        std::cout << ")\n";
        tslm::Session session(model);
        // The trained prompt, built by the library from the recording and its column names.
        session.append_recording(rec.channels, rec.names, argc > 3 ? argv[3] : "");
        std::cout << "rationale: ";
        session.generate(argc > 4 ? std::atoi(argv[4]) : 160, [](std::string_view piece) {
            std::cout << piece << std::flush;
            return true;
        });
        std::cout << "\nanswer: " << session.last_answer() << "\n";
    } catch (const std::exception &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}

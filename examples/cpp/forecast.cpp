// forecast.cpp — forecast a one-column CSV history with a forecasting model (tslm.hpp).
// Forecasting models are on tslm's roadmap; a text or classifier model answers
// TSLM_ERR_WRONG_KIND, which this program reports.
//
//   c++ -std=c++17 -O2 -I. forecast.cpp -o forecast $(pkg-config --cflags --libs tslm)
//   ./forecast model.tslm history.csv [horizon]
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "tslm.hpp"

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " MODEL.tslm HISTORY.csv [HORIZON]\n";
        return 2;
    }
    try {
        std::ifstream in(argv[2]);
        if (!in) throw std::runtime_error(std::string("cannot open ") + argv[2]);
        std::vector<float> history;
        for (std::string line; std::getline(in, line);) {
            char *end = nullptr;
            float v = std::strtof(line.c_str(), &end);
            if (end != line.c_str()) history.push_back(v);  // skips a header row
        }
        tslm::Model model(argv[1]);
        int horizon = argc > 3 ? std::atoi(argv[3]) : 12;
        auto f = model.forecast(history, horizon, {0.1f, 0.9f});
        std::cout << "step,forecast,q10,q90\n";
        for (int t = 0; t < horizon; t++)
            std::cout << t + 1 << "," << f.point[t] << "," << f.quantiles[t] << "," << f.quantiles[horizon + t] << "\n";
    } catch (const std::exception &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}

// forecast.cpp — forecast a one-column CSV history with a forecasting model of one channel
// (tslm.hpp); prints the point forecast per step, as ../c/forecast.c does. A text or classifier
// model answers TSLM_ERR_WRONG_KIND, which this program reports.
//
//   c++ -std=c++17 -O2 -I. forecast.cpp -o forecast $(pkg-config --cflags --libs tslm)
//   ./forecast model.tslm history.csv [horizon]
#include <cstdio>
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
        tslm_forecast_info info = model.forecast_info();
        int horizon = argc > 3 ? std::atoi(argv[3]) : (info.max_horizon > 0 ? info.max_horizon : 12);
        auto f = model.forecast(history, horizon);
        std::cout << "step,forecast_0\n";
        for (int t = 0; t < horizon; t++) {
            char value[32];
            std::snprintf(value, sizeof value, "%g", f.point[t]);  // as the C example prints it
            std::cout << t + 1 << "," << value << "\n";
        }
    } catch (const std::exception &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}

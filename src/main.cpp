// SPDX-License-Identifier: MIT
#include "app/app.hpp"

int main(int argc, char** argv) { return godislock::app::run(argc, argv); }

// compress TVM runner: loads a Relax VM library (model.so), runs `main` on each float32 input sample
// read from a raw binary file and writes every float32 output to a raw binary file.
//
// Written against the tvm-ffi headers only; link with
//   -Wl,--no-as-needed -ltvm_runtime -ltvm_ffi
// so the runtime's static initialisers register the library loader and the VM.
//
// Usage: runner MODEL.so INPUT.bin SHAPE OUTPUT.bin
//        runner --latency MODEL.so SHAPE [WARMUP [RUNS]]
//   SHAPE  comma-separated positive input dims, e.g. 1,3,32,32
//   INPUT.bin holds one or more samples of SHAPE back to back; the outputs of all samples are
//          written back to back in OUTPUT.bin ("samples=<n>" is printed when n > 1).
//   --latency runs a zero input WARMUP times (default 10), then times RUNS single runs (default 100)
//          with the steady clock and prints one JSON object on stdout:
//          {"warmup": W, "runs": N, "median_ms": ..., "p90_ms": ..., "min_ms": ..., "mean_ms": ...}
// Prints one line "output<i> shape=d0,d1,..." per output. Exit code 0 on success, 1 on any error
// (unreadable input, bad shape, allocation failure, output not written), 2 on a usage error.

#include <tvm/ffi/any.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ffi = tvm::ffi;

namespace {

constexpr int kPooledAllocator = 2;
constexpr size_t kAlignment = 64;

struct AlignedCPUAlloc {
  void AllocData(DLTensor* tensor) {
    size_t size = ffi::GetDataSize(*tensor);
    size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
    tensor->data = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
    if (tensor->data == nullptr) throw std::runtime_error("cannot allocate " + std::to_string(rounded) + " bytes");
  }
  void FreeData(DLTensor* tensor) { std::free(tensor->data); }
};

constexpr int64_t kMaxElements = int64_t{1} << 31;  // 8 GiB of float32: far beyond any model input

std::vector<int64_t> ParseShape(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream stream(text);
  std::string item;
  int64_t elements = 1;
  while (std::getline(stream, item, ',')) {
    bool digits = !item.empty() && item.size() <= 9 && item.find_first_not_of("0123456789") == std::string::npos;
    int64_t dim = digits ? std::stoll(item) : 0;
    if (dim <= 0) throw std::runtime_error("SHAPE must be positive integers like 1,3,32,32, got '" + text + "'");
    elements *= dim;
    if (elements > kMaxElements) throw std::runtime_error("SHAPE " + text + " holds more than 2^31 elements");
    dims.push_back(dim);
  }
  if (dims.empty()) throw std::runtime_error("SHAPE must be positive integers like 1,3,32,32, got '" + text + "'");
  return dims;
}

ffi::Tensor NewInput(const std::vector<int64_t>& dims) {
  DLDataType f32{kDLFloat, 32, 1};
  return ffi::Tensor::FromNDAlloc(AlignedCPUAlloc(), ffi::ShapeView(dims.data(), dims.size()), f32, DLDevice{kDLCPU, 0});
}

// Reads the next sample into `tensor`; false at the end of the file, an error on a partial sample.
bool ReadSample(std::ifstream& file, const std::string& path, ffi::Tensor& tensor) {
  size_t bytes = ffi::GetDataSize(tensor);
  file.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(bytes));
  size_t got = static_cast<size_t>(file.gcount());
  if (got == 0) return false;
  if (got != bytes) throw std::runtime_error("input file " + path + " ends inside a sample of " + std::to_string(bytes) + " bytes");
  return true;
}

std::vector<ffi::Tensor> Flatten(const ffi::Any& result) {
  if (auto tensor = result.as<ffi::Tensor>()) return {*tensor};
  std::vector<ffi::Tensor> outputs;
  if (auto array = result.as<ffi::Array<ffi::Any>>()) {
    for (const ffi::Any& item : *array) {
      for (const ffi::Tensor& tensor : Flatten(item)) outputs.push_back(tensor);
    }
    return outputs;
  }
  throw std::runtime_error("main returned neither a tensor nor a tuple of tensors");
}

void WriteOutputs(std::ofstream& file, const std::string& path, const std::vector<ffi::Tensor>& outputs, bool print) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    const DLTensor* dl = outputs[i].GetDLTensorPtr();
    if (dl->dtype.code != kDLFloat || dl->dtype.bits != 32) throw std::runtime_error("output is not float32");
    file.write(static_cast<const char*>(dl->data) + dl->byte_offset,
               static_cast<std::streamsize>(ffi::GetDataSize(*dl)));
    if (!file) throw std::runtime_error("cannot write the output file " + path);
    if (!print) continue;
    std::cout << "output" << i << " shape=";
    for (int d = 0; d < dl->ndim; ++d) std::cout << (d ? "," : "") << dl->shape[d];
    std::cout << "\n";
  }
}

ffi::Function LoadMain(const char* path) {
  ffi::Module library = ffi::Module::LoadFromFile(path);
  ffi::Module vm = library->GetFunction("vm_load_executable").value()().cast<ffi::Module>();
  vm->GetFunction("vm_initialization").value()(static_cast<int>(kDLCPU), 0, kPooledAllocator,
                                                 static_cast<int>(kDLCPU), 0, kPooledAllocator);
  return vm->GetFunction("main").value();
}

int ParseCount(const char* text, const char* what) {
  std::string value(text);
  bool digits = !value.empty() && value.size() <= 7 && value.find_first_not_of("0123456789") == std::string::npos;
  if (!digits) throw std::runtime_error(std::string(what) + " must be a non-negative integer, got '" + value + "'");
  return std::stoi(value);
}

// --latency MODEL.so SHAPE [WARMUP [RUNS]]: batch-1 latency statistics as one JSON line.
int Latency(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: runner --latency MODEL.so SHAPE [WARMUP [RUNS]]\n";
    return 2;
  }
  int warmup = argc > 4 ? ParseCount(argv[4], "WARMUP") : 10;
  int runs = argc > 5 ? ParseCount(argv[5], "RUNS") : 100;
  if (runs < 1) throw std::runtime_error("RUNS must be >= 1");
  ffi::Function main_fn = LoadMain(argv[2]);
  ffi::Tensor input = NewInput(ParseShape(argv[3]));
  std::fill_n(static_cast<char*>(input.data_ptr()), ffi::GetDataSize(input), 0);
  for (int i = 0; i < warmup; ++i) main_fn(input);
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    auto start = std::chrono::steady_clock::now();
    main_fn(input);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  double mean = 0;
  for (double t : times) mean += t / runs;
  std::sort(times.begin(), times.end());
  auto at = [&](double q) { return times[std::min(times.size() - 1, static_cast<size_t>(q * (times.size() - 1) + 0.5))]; };
  std::printf("{\"warmup\": %d, \"runs\": %d, \"median_ms\": %.6f, \"p90_ms\": %.6f, \"min_ms\": %.6f, \"mean_ms\": %.6f}\n",
              warmup, runs, at(0.5), at(0.9), times.front(), mean);
  return 0;
}

int Run(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--latency") return Latency(argc, argv);
  if (argc < 5) {
    std::cerr << "usage: runner MODEL.so INPUT.bin SHAPE OUTPUT.bin\n       runner --latency MODEL.so SHAPE [WARMUP [RUNS]]\n";
    return 2;
  }
  ffi::Function main_fn = LoadMain(argv[1]);
  ffi::Tensor input = NewInput(ParseShape(argv[3]));
  std::ifstream in(argv[2], std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read the input file ") + argv[2]);
  std::ofstream out(argv[4], std::ios::binary);
  if (!out) throw std::runtime_error(std::string("cannot write the output file ") + argv[4]);
  int samples = 0;
  while (ReadSample(in, argv[2], input)) {
    ffi::Any result = main_fn(input);
    WriteOutputs(out, argv[4], Flatten(result), samples == 0);
    ++samples;
  }
  if (samples == 0) throw std::runtime_error(std::string("input file ") + argv[2] + " holds no sample");
  out.close();
  if (!out) throw std::runtime_error(std::string("cannot write the output file ") + argv[4]);
  if (samples > 1) std::cout << "samples=" << samples << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "runner error: " << error.what() << "\n";
    return 1;
  }
}

// compress TVM runner: loads a Relax VM library (model.so), runs `main` on one float32 input read
// from a raw binary file and writes every float32 output to a raw binary file.
//
// Written against the tvm-ffi headers only; link with
//   -Wl,--no-as-needed -ltvm_runtime -ltvm_ffi
// so the runtime's static initialisers register the library loader and the VM.
//
// Usage: runner MODEL.so INPUT.bin SHAPE OUTPUT.bin [REPEAT]
//   SHAPE  comma-separated input dims, e.g. 1,3,32,32
//   REPEAT timed runs after one warm-up (default 0); prints "latency_ms=<mean>" when > 0.
// Prints one line "output<i> shape=d0,d1,..." per output. Exit code 0 on success.

#include <tvm/ffi/any.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
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
  }
  void FreeData(DLTensor* tensor) { std::free(tensor->data); }
};

std::vector<int64_t> ParseShape(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) dims.push_back(std::stoll(item));
  return dims;
}

ffi::Tensor ReadInput(const std::string& path, const std::vector<int64_t>& dims) {
  DLDataType f32{kDLFloat, 32, 1};
  ffi::Tensor tensor = ffi::Tensor::FromNDAlloc(AlignedCPUAlloc(), ffi::ShapeView(dims.data(), dims.size()),
                                                f32, DLDevice{kDLCPU, 0});
  size_t bytes = ffi::GetDataSize(tensor);
  std::ifstream file(path, std::ios::binary);
  file.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(bytes));
  if (static_cast<size_t>(file.gcount()) != bytes) {
    throw std::runtime_error("input file " + path + " holds fewer than " + std::to_string(bytes) + " bytes");
  }
  return tensor;
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

void WriteOutputs(const std::string& path, const std::vector<ffi::Tensor>& outputs) {
  std::ofstream file(path, std::ios::binary);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const DLTensor* dl = outputs[i].GetDLTensorPtr();
    if (dl->dtype.code != kDLFloat || dl->dtype.bits != 32) throw std::runtime_error("output is not float32");
    file.write(static_cast<const char*>(dl->data) + dl->byte_offset,
               static_cast<std::streamsize>(ffi::GetDataSize(*dl)));
    std::cout << "output" << i << " shape=";
    for (int d = 0; d < dl->ndim; ++d) std::cout << (d ? "," : "") << dl->shape[d];
    std::cout << "\n";
  }
}

int Run(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: runner MODEL.so INPUT.bin SHAPE OUTPUT.bin [REPEAT]\n";
    return 2;
  }
  int repeat = argc > 5 ? std::atoi(argv[5]) : 0;
  ffi::Module library = ffi::Module::LoadFromFile(argv[1]);
  ffi::Module vm = library->GetFunction("vm_load_executable").value()().cast<ffi::Module>();
  vm->GetFunction("vm_initialization").value()(static_cast<int>(kDLCPU), 0, kPooledAllocator,
                                                 static_cast<int>(kDLCPU), 0, kPooledAllocator);
  ffi::Function main_fn = vm->GetFunction("main").value();
  ffi::Tensor input = ReadInput(argv[2], ParseShape(argv[3]));
  ffi::Any result = main_fn(input);
  if (repeat > 0) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeat; ++i) result = main_fn(input);
    std::chrono::duration<double, std::milli> spent = std::chrono::steady_clock::now() - start;
    std::cout << "latency_ms=" << spent.count() / repeat << "\n";
  }
  WriteOutputs(argv[4], Flatten(result));
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

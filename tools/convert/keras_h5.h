// keras_h5.h - reads a Keras HDF5 model file (model.save('x.h5'): Keras 2.1-2.10, tf.keras and
// Keras 3's legacy .h5) with the HDF5 C library: the root attribute model_config (JSON) and, under
// model_weights, each layer's weight_names and float datasets. Fixed- and variable-length strings
// are both accepted; a layer without weights may store weight_names as an empty float64 array.
//
// The file is untrusted: HDF5's own error printing is silenced, every HDF5 failure becomes a
// Status (with HDF5's innermost error message), and every shape is checked before memory is
// allocated for it.
#pragma once

#include <string>

#include "keras_layers.h"
#include "model/graph.h"
#include "status.h"

namespace fm {

// Reads the config and all weights of the layers listed in model_weights/layer_names.
Status ReadKerasH5(const std::string& path, KerasModelSource* out);

// ReadKerasH5 + ConvertKerasModel.
Status ConvertKerasH5(const std::string& path, const KerasConvertOptions& options, Graph* out);

}  // namespace fm

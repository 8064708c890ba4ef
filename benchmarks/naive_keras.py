"""(a) The naive recipe as a plain Keras script: NumPy arrays into fit, validation_split=0.2.

Prints one JSON line: per-epoch times, samples/s, test accuracy. Reads the same
verified MNIST files as mnist-exp (run `mnist-exp-data pull mnist` first).
"""

import json

import keras
from common import epoch_timer, mnist_arrays

x_train, y_train, x_test, y_test = mnist_arrays()
model = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
timer = epoch_timer(keras)
model.fit(x_train, y_train, epochs=5, batch_size=64, validation_split=0.2, callbacks=[timer], verbose=0)
_, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(
    json.dumps(
        {
            "epoch_s": timer.epoch_s,
            "train_s": timer.train_s,
            "train_samples": 48000,
            "test_accuracy": float(accuracy),
            "params": model.count_params(),
        }
    )
)

"""Yardsticks for generated images: how a classifier trained on real data labels them."""

import numpy as np


def classifier_yardstick(probabilities, num_classes):
    """Summarises a classifier's class probabilities for a set of images.

    Returns:
        A dict with `mean_top_probability` (how sure the classifier is, on average),
        `classes_covered` (how many classes are the top class of some image) and
        `class_counts`.
    """
    probabilities = np.asarray(probabilities)
    counts = np.bincount(probabilities.argmax(axis=1), minlength=num_classes)
    return {"mean_top_probability": float(probabilities.max(axis=1).mean()),
            "classes_covered": int((counts > 0).sum()),
            "class_counts": counts.tolist()}


def knn_probabilities(train_images, train_labels, images, k=10):
    """Class probabilities of a k-nearest-neighbour classifier (scikit-learn) on pixels.

    Unlike a softmax network, whose confidence stays high far from its training data,
    a neighbour vote is unsure about images unlike any real one.
    """
    from sklearn.neighbors import KNeighborsClassifier

    flat = np.asarray(train_images, "float64").reshape(len(train_images), -1)
    classifier = KNeighborsClassifier(k).fit(flat, train_labels)
    return classifier.predict_proba(np.asarray(images, "float64").reshape(len(images), -1))

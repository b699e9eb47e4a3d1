"""Request and answer shapes: they validate simple inputs and describe the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from annotator.services.exchange import EXPORT_FORMATS, IMPORT_FORMATS
from annotator.models import ImageStatus


class LabelSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    color = serializers.CharField(max_length=7, required=False, allow_blank=True, default="")
    hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True, allow_null=True, default=None)
    attributes = serializers.ListField(child=serializers.DictField(), required=False, default=list, help_text=(
        'Box attributes of this label: [{"name", "type": checkbox|choice|text, "choices": [...] for a choice}].'))


class ProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    labels = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list,
                                   help_text="Label names to create with the project.", write_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class LabelOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    color = serializers.CharField()
    hotkey = serializers.CharField(allow_null=True)
    order = serializers.IntegerField()
    attributes = serializers.ListField(child=serializers.DictField())


class LabelListSerializer(serializers.Serializer):
    results = LabelOutSerializer(many=True)


class ProjectOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ProjectListSerializer(serializers.Serializer):
    results = ProjectOutSerializer(many=True)


class ProjectCreatedSerializer(ProjectOutSerializer):
    labels = LabelOutSerializer(many=True)


class ProjectDetailSerializer(ProjectCreatedSerializer):
    role = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Images by status")


class ProjectDeletedSerializer(serializers.Serializer):
    error = serializers.CharField(required=False, help_text="Without ?confirm: what the deletion would remove")
    deleted = serializers.DictField(child=serializers.IntegerField(),
                                    help_text="images, boxes, tags, labels, reviews, members, runs, suggestions, exports")


class BoxSerializer(serializers.Serializer):
    label = serializers.IntegerField(help_text="Label id")
    x = serializers.FloatField(help_text="Image pixels, origin top-left")
    y = serializers.FloatField()
    w = serializers.FloatField()
    h = serializers.FloatField()
    attributes = serializers.DictField(required=False, help_text=(
        "Only what is set: occluded / truncated / difficult (true), and the attributes the label defines "
        "(checkbox: true, choice: one of its values, text)."))


class AnnotationsInSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The version last read; a stale one gets 409 with the current state.")
    boxes = BoxSerializer(many=True)
    tags = serializers.ListField(child=serializers.IntegerField(), help_text="Label ids set on the whole image.")


class VersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()


class AnnotationStateSerializer(serializers.Serializer):
    image = serializers.DictField()
    boxes = serializers.ListField(child=serializers.DictField())
    tags = serializers.ListField(child=serializers.DictField())
    suggestions = serializers.ListField(child=serializers.DictField())
    model_note = serializers.CharField(allow_null=True, help_text="set while the model is near chance")


class QueueNextSerializer(serializers.Serializer):
    image = AnnotationStateSerializer(allow_null=True, help_text="null when no image is left for you")


class ImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ImageStatus.choices)
    version = serializers.IntegerField()
    file = serializers.CharField()
    thumbnail = serializers.CharField()


class ImagePageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = ImageSerializer(many=True)


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField())


class ExportParamsSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(EXPORT_FORMATS))
    status = serializers.ChoiceField(choices=[*ImageStatus.values, "all"], required=False, default="submitted",
                                     help_text="Only images with this status (default: submitted); “all” for every "
                                               "image, its status written in COCO and JSON.")
    predictions = serializers.FloatField(required=False, min_value=0, max_value=1,
                                         help_text="Include suggestions with probability ≥ this, as predictions.")
    images = serializers.BooleanField(required=False, default=False,
                                      help_text="YOLO: put the image files in the zip too (images/ beside labels/).")
    background = serializers.BooleanField(required=False, default=False,
                                          help_text="Run as a job that ends as a download (automatic for big projects).")


class ImportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(IMPORT_FORMATS))
    files = serializers.ListField(child=serializers.FileField())


class ExportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    options = serializers.DictField()
    size_bytes = serializers.IntegerField()
    error = serializers.CharField()
    download = serializers.CharField(allow_null=True)
